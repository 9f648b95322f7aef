"""A replica of the service mnistlite replaces, for side-by-side benchmarks only (bench_old_service.py).

Issue 5 describes it: FastAPI + TensorFlow, one worker, ``curl -F file=@digit.png`` to ``POST /predict``,
no size limits and no error handling (a text file or an empty upload gave HTTP 500). Its code is not in
this repository, so this is the common way such a service is written: a Keras model loaded once, and per
request Pillow decode, grayscale, resize to 28x28 and ``model.predict``. It serves the same weights as
the mnistlite model it is compared with (``OLD_SERVICE_WEIGHTS``: an .npz of W0, b0, W1, b1, ...).

Run (in a venv with tensorflow-cpu, fastapi, python-multipart, uvicorn, pillow):
  OLD_SERVICE_WEIGHTS=w.npz uvicorn --app-dir benchmarks old_service_app:app \
      --host 127.0.0.1 --port 8001 --workers 1
"""
from __future__ import annotations

import io
import os
from typing import Annotated

import numpy as np
import tensorflow as tf
from fastapi import FastAPI, File, UploadFile
from PIL import Image


def _keras_model(path: str) -> tf.keras.Model:
    w = np.load(path)
    n = len(w.files) // 2
    sizes = [w["W0"].shape[0]] + [w[f"W{i}"].shape[1] for i in range(n)]
    layers = [tf.keras.Input(shape=(sizes[0],))]
    layers += [tf.keras.layers.Dense(k, activation="relu") for k in sizes[1:-1]]
    layers += [tf.keras.layers.Dense(sizes[-1], activation="softmax")]
    model = tf.keras.Sequential(layers)
    model.set_weights([w[f"{kind}{i}"] for i in range(n) for kind in ("W", "b")])
    return model


app = FastAPI()
model = _keras_model(os.environ["OLD_SERVICE_WEIGHTS"])


@app.get("/readiness")
def readiness():
    return {"status": "ready"}


@app.post("/predict")
async def predict(file: Annotated[UploadFile, File()]):
    img = Image.open(io.BytesIO(await file.read())).convert("L").resize((28, 28))
    x = np.asarray(img, dtype=np.float32)
    if x.mean() > 127:  # dark ink on white paper -> MNIST's white on black
        x = 255 - x
    p = model.predict(x.reshape(1, 784) / 255.0, verbose=0)[0]
    return {"predicted_class": int(p.argmax()), "confidence": float(p.max()), "probabilities": p.tolist()}
