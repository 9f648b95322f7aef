"""``POST /predict?explain=1``: the 28x28 image the model saw, as a small base64 PNG in the answer."""
from __future__ import annotations

import base64
import io

import numpy as np


def png_base64(image: np.ndarray) -> str:
    """uint8 (28, 28) white-on-black digit -> base64 of its 8-bit grayscale PNG (a few hundred bytes)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def add_inputs(answers: list, images: np.ndarray) -> None:
    """Put each image into its answer as ``preprocessed_png`` (images uint8 (n, 28, 28))."""
    for answer, image in zip(answers, images, strict=True):
        answer["preprocessed_png"] = png_base64(image)
