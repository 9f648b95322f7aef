"""The model behind the service: arrays in, answer dicts out, plus the start-up self-test.

``ServingModel`` is all the app asks of it, so tests can inject a small fake; ``Predictor`` is the
real one around a ``mnistlite`` model. Images are judged by the library's corruption detector (the
same code as training and the data gate); nothing about pixels is reimplemented here.
"""
from __future__ import annotations

import base64
import hashlib
import io
import zlib
from typing import Protocol

import numpy as np

from mnistlite.images.preprocess import preprocess_image
from mnistlite.nn.arrays import to_pixels
from mnistlite.quality.detector import corruption_reasons
from mnistlite.quality.honest import judge

# A typical MNIST "6" (training image 165), zlib + base64 of its 784 uint8 pixels: a real
# handwritten digit that even weak models (one epoch on 5k images, softmax regression) give
# > 99.8% after the full upload path, so a failure means a broken model or pipeline.
SELF_TEST_LABEL = 6
SELF_TEST_DIGIT = (
    "eNpjYKAOkDz1bzMuqUN///Zhl+I89ffPci7sclP//X2Hw8TQj/9eB2CXcnjz91MQDm0r//51xy7DvfLP3xM4dFn+/fs1DIfc5r9/L+CQevTv"
    "301l++X//v2rkkeXe/D37471r//9BYIzsphyQPDv47t3v/+WY5U7Kw5iocll/wLKfIgSZGBQefklBFWuAqQrjYGBQ/3a37MMWOS6AtoX//17VRlN"
    "jv0RUO739/9//16SxvDfzg9gd346Lo/F8zEguf+ZDEMPAABbgnqZ"
)


class ServingModel(Protocol):
    """What the app's routes call. An answer is a dict ``{"predicted_class", "confidence",
    "probabilities", "model_version", "abstain"[, "abstain_reason", "reason"][, "warnings"]}``;
    ``version`` names the model in answers, metrics and the OIP metadata; ``describe()`` is the model part
    of ``GET /v1/model``."""

    version: str
    sha256: str
    layer_sizes: list
    n_classes: int

    def predict(self, x: np.ndarray) -> list:
        """float32 (n, 784) in [0, 1] -> n answers."""

    def predict_images(self, images: np.ndarray, no_ink=None) -> list:
        """uint8 (n, 28, 28) MNIST-form digits (white ink on black) -> n answers; ``no_ink`` (bool (n,))
        marks images in which preprocessing found no ink."""

    def describe(self) -> dict:
        """version, sha256, layer_sizes, activation, created, mnistlite and preprocessing versions,
        training_metrics and config."""

    def self_test(self) -> str | None:
        """None when the model answers right, else why it is not ready (the app answers 503)."""


class Predictor:
    """The real ``ServingModel`` around a loaded ``mnistlite`` model.

    ``version`` is the model file's sha256 prefix (or, for a model never saved, of its weights).
    """

    def __init__(self, model):
        sizes = list(model.layer_sizes)
        if sizes[0] != 784:
            raise ValueError(f"the service serves 28x28 digit models (784 inputs), got layer sizes {sizes}")
        self.model = model
        self.layer_sizes = sizes
        self.n_classes = sizes[-1]
        self.sha256 = model.sha256 or hashlib.sha256(
            b"".join(np.ascontiguousarray(a).tobytes() for pair in model.weights for a in pair)).hexdigest()
        self.version = self.sha256[:12]

    def proba(self, x: np.ndarray) -> np.ndarray:
        """float32 (n, 784) in [0, 1] -> class probabilities float32 (n, k), calibrated when the model is."""
        return self.model.predict_proba(x)

    def answers(self, j) -> list:
        """A ``mnistlite.quality.honest.Judgement`` -> n answers: class, confidence, probabilities,
        model_version, abstain[, abstain_reason, reason][, warnings]. Every route's answers come from here."""
        p = j.proba
        classes = p.argmax(axis=1).tolist()
        rounded = p.astype(np.float64).round(6).tolist()
        verdicts, version, out = j.verdict.tolist(), self.version, []   # Python ints: no numpy scalars
        for i, c in enumerate(classes):
            row, verdict = rounded[i], verdicts[i]
            a = {"predicted_class": c, "confidence": row[c], "probabilities": row,
                 "model_version": version, "abstain": verdict != 0}
            if verdict:
                a["abstain_reason"] = j.abstain_reason(i)
                a["reason"] = j.reasons[i]
            if j.warnings[i]:
                a["warnings"] = [j.warnings[i]]
            out.append(a)
        return out

    def check(self, images: np.ndarray) -> list | None:
        """uint8 (n, 28, 28) -> per-image corruption reason (None = looks like a digit)."""
        return corruption_reasons(images)

    def predict_images(self, images: np.ndarray, no_ink=None) -> list:
        """uint8 (n, 28, 28) MNIST-form digits -> n answers, with warnings for noise-like images.
        ``no_ink`` (bool (n,)) marks images in which preprocessing found no ink: not a digit."""
        return self.answers(judge(self.model, images, no_ink=no_ink))

    def predict(self, x: np.ndarray) -> list:
        """float32 (n, 784) in [0, 1] -> n answers; judged by the detector as their uint8 rendering."""
        u8 = to_pixels(x)
        return self.answers(judge(self.model, u8, x=x))

    def describe(self) -> dict:
        """The model part of /v1/model, from the file's metadata."""
        meta = self.model.metadata or {}
        return {
            "version": self.version,
            "sha256": self.sha256,
            "layer_sizes": self.layer_sizes,
            "activation": meta.get("activation", getattr(self.model, "activation", None)),
            "created": meta.get("created"),
            "mnistlite_version": meta.get("mnistlite_version"),
            "preprocessing_version": meta.get("preprocessing_version"),
            "training_metrics": meta.get("metrics") or (meta.get("user") or {}).get("metrics") or {},
            "config": meta.get("config"),
            "calibration": calibration_summary(self.model),
        }

    def self_test(self) -> str | None:
        """Predict the embedded digit through the whole upload path; None if right, else the reason."""
        from PIL import Image

        # Runs at start-up, so one-time costs of the path (Pillow plugin registration, numpy
        # first calls) are paid here rather than by the first client.
        digit = np.frombuffer(zlib.decompress(base64.b64decode(SELF_TEST_DIGIT)), np.uint8).reshape(28, 28)
        try:
            buf = io.BytesIO()
            Image.fromarray(255 - digit).save(buf, format="PNG")  # dark ink on white, like an upload
            answer = self.predict_images(preprocess_image(buf.getvalue())[None])[0]
        except Exception as e:  # any failure of the path means "not ready", with the reason
            return f"self-test failed: {type(e).__name__}: {e}"
        if answer["predicted_class"] != SELF_TEST_LABEL:
            return (f"self-test digit {SELF_TEST_LABEL} predicted as {answer['predicted_class']} "
                    f"(confidence {answer['confidence']:.3f}); the model file is probably wrong")
        return None



def calibration_summary(model) -> dict | None:
    """The /v1/model view of a model's calibration: temperature, thresholds, their policy and held-out
    figures; None for a model file without one (it never abstains)."""
    cal = getattr(model, "calibration", None)
    if cal is None:
        return None
    return {"temperature": cal.temperature,
            "thresholds": {"min_confidence": cal.min_confidence, "min_pair": cal.min_pair},
            "rule": "answer when the calibrated top probability >= min_confidence; else 'unsure' when the "
                    "top two hold >= min_pair, else 'not_a_digit'; no ink or a blank image: 'not_a_digit'",
            "policy": cal.policy, "held_out": cal.held_out}
