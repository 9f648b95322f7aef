"""One decision for every MNIST-form image, wherever it enters: calibrated probabilities, then answer,
"unsure" (between two digits) or "not a digit".

The model's calibration (``nn/calibration.py``) holds the temperature and thresholds; an image with no
ink at all (what ``to_mnist`` makes of a blank page) or one the corruption detector calls blank is not a
digit whatever the model says. A model without a calibration (a file from before it existed) answers
everything, as it always did. The service and ``benchmarks/bench_honest.py`` both call ``judge``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..nn.arrays import to_float
from ..nn.calibration import ANSWER, NOT_A_DIGIT, REASONS, UNSURE, Calibration, decide, top_two
from .detector import corruption_reasons


@dataclass
class Judgement:
    """Per image: ``proba`` float32 (n, k) calibrated; ``verdict`` int8 (n,) (0 answer, 1 unsure, 2 not a
    digit); ``reasons`` the plain-words reason of each abstention (None when answered); ``warnings`` the
    corruption detector's reason or None."""

    proba: np.ndarray
    verdict: np.ndarray
    reasons: list
    warnings: list

    def abstain_reason(self, i: int) -> str | None:
        """"unsure" or "not_a_digit" for an abstention, else None."""
        return REASONS.get(int(self.verdict[i]))


def judge(model, images, *, x=None, no_ink=None) -> Judgement:
    """uint8 (n, 28, 28) MNIST-form images (and optionally their float32 (n, 784) model input ``x``)
    -> a ``Judgement``. ``no_ink`` (bool (n,), optional) marks images in which preprocessing found no ink."""
    images = np.asarray(images)
    if images.shape == (1, 28, 28) and images.dtype == np.uint8:
        return _judge_one(model, images, x, no_ink)
    return _judge_many(model, images, x, no_ink)


def _judge_many(model, images, x, no_ink) -> Judgement:
    """``judge`` of any number of images, vectorised."""
    n = len(images)
    x = to_float(images.reshape(n, -1)) if x is None else x
    p, top = model.predict_scores(x)
    warnings = corruption_reasons(images)
    calibration = model.calibration
    verdict = decide(p, calibration, top)
    empty = np.zeros(n, bool)
    if calibration is not None:
        empty = ~images.reshape(n, -1).any(axis=1)
        if no_ink is not None:
            empty |= np.asarray(no_ink, bool)
        empty |= np.array([bool(w) and w.startswith("blank") for w in warnings], bool)
        verdict[empty] = NOT_A_DIGIT
    return Judgement(p, verdict, _reasons(p, verdict, empty), warnings)


def _judge_one(model, images, x, no_ink) -> Judgement:
    """``judge`` of one image (a service upload) with the per-row rule on Python scalars: the same
    ``Judgement``, with fewer small array operations."""
    p, top = model.predict_scores(images if x is None else x)   # the pixels: the same input as to_float's
    warning = corruption_reasons(images)[0]
    calibration = model.calibration
    verdict = decide_one(p[0].tolist(), calibration, top.item())
    empty = False
    if calibration is not None:
        # an all-zero image has no ink, so the detector's first rule calls it blank: no images.any()
        blank = warning is not None and warning.startswith("blank")
        empty = blank or (no_ink is not None and bool(no_ink[0]))
        if empty:
            verdict = NOT_A_DIGIT
    verdicts = np.array([verdict], np.int8)
    reasons = _reasons(p, verdicts, np.array([empty])) if verdict else [None]
    return Judgement(p, verdicts, reasons, [warning])


def decide_one(row: list, calibration: Calibration | None, max_logit: float | None = None) -> int:
    """``calibration.decide`` of one row: ``row`` its k float32 probabilities as Python floats, ``max_logit``
    its largest raw logit (float32 as a float). The same comparisons, made in float32 as numpy makes them."""
    if calibration is None:
        return ANSWER
    min_confidence, min_pair = _f32(calibration.min_confidence), _f32(calibration.min_pair)
    second, first = sorted(row)[-2:]
    verdict = ANSWER
    if first < min_confidence:
        verdict = UNSURE if _f32(first + second) >= min_pair else NOT_A_DIGIT
    floor = calibration.min_logit
    if floor is not None and max_logit is not None and max_logit < _f32(floor):
        verdict = NOT_A_DIGIT
    return verdict


def _f32(v: float) -> float:
    """v rounded to the nearest float32 (a sum of two float32 rounded this way is their float32 sum)."""
    return float(np.float32(v))


def _reasons(p, verdict, empty) -> list:
    reasons: list = [None] * len(verdict)
    abstained = np.flatnonzero(verdict)
    if not len(abstained):
        return reasons
    _, _, first, second = top_two(p[abstained])
    for j, i in enumerate(abstained.tolist()):
        if verdict[i] == UNSURE:
            a, b = sorted((int(first[j]), int(second[j])))
            reasons[i] = f"between {a} and {b}"
        elif empty[i]:
            reasons[i] = "no ink found: the image looks blank"
        else:
            reasons[i] = "it does not look like any digit"
    return reasons
