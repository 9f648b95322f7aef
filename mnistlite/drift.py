"""Drift of served answers against the training reference: the population stability index (PSI).

At training time ``reference`` records the model's predicted-class mix and confidence mix on held-out
digits; it is saved in the model file (metadata ``drift_reference``). At serving time a
``SlidingMix`` keeps the same two mixes over the last answers and ``psi`` compares them. PSI is the
symmetric KL divergence sum((p - q) * ln(p / q)); by the usual rule of thumb below 0.1 is no change,
0.1 to 0.25 a moderate one and above 0.25 a significant one.
"""
from __future__ import annotations

from bisect import bisect_left

import numpy as np

# Upper edges of the confidence bins (the last bin runs to 1.0); bin i holds confidences in
# (edge[i-1], edge[i]], as a Prometheus histogram's `le` buckets do. Dense near 1, where a good
# model's answers are, and around 0.9, where label smoothing puts them.
CONFIDENCE_EDGES = (0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)
# A share never counts as less than this: an empty bin gives a large but finite term.
FLOOR = 1e-4
REFERENCE_MAX = 10000   # held-out answers the reference is computed from, at most


def confidence_bin(confidence: float, edges=CONFIDENCE_EDGES) -> int:
    """The bin index (0..len(edges)) of one confidence."""
    return bisect_left(edges, confidence)


def shares(counts) -> np.ndarray:
    """Counts -> float64 shares summing to 1 (all zeros stay zeros)."""
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum()
    return c / total if total else c


def psi(observed, expected) -> float:
    """Population stability index of two mixes (counts or shares of the same bins); shares are floored
    at FLOOR so an empty bin counts, finitely."""
    p = np.maximum(shares(observed), FLOOR)
    q = np.maximum(shares(expected), FLOOR)
    if p.shape != q.shape:
        raise ValueError(f"PSI needs mixes over the same bins, got {p.shape} and {q.shape}")
    return float(np.sum((p - q) * np.log(p / q)))


def reference(proba: np.ndarray, source: str) -> dict:
    """The training reference from held-out class probabilities float (n, k): JSON-able
    ``{"classes": k shares, "confidence": shares per bin, "confidence_edges", "n", "source"}``."""
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or not len(p):
        raise ValueError(f"reference needs (n, k) probabilities with n >= 1, got shape {p.shape}")
    p = p[:REFERENCE_MAX]
    k = p.shape[1]
    classes = np.bincount(p.argmax(axis=1), minlength=k)
    # rounded as the service rounds its answers, so a confidence on an edge falls in the same bin
    bins = np.searchsorted(np.asarray(CONFIDENCE_EDGES), p.max(axis=1).round(6), side="left")
    conf = np.bincount(bins, minlength=len(CONFIDENCE_EDGES) + 1)
    return {"classes": [round(v, 6) for v in shares(classes).tolist()],
            "confidence": [round(v, 6) for v in shares(conf).tolist()],
            "confidence_edges": list(CONFIDENCE_EDGES), "n": int(len(p)), "source": source}


class SlidingMix:
    """The class and confidence mixes of the last ``window`` answers, O(1) per answer, and their PSI
    against a saved ``reference`` (the dict ``reference`` returns)."""

    def __init__(self, ref: dict, window: int = 1000):
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window!r}")
        self.edges = tuple(ref["confidence_edges"])
        self.ref_classes = np.asarray(ref["classes"], dtype=np.float64)
        self.ref_confidence = np.asarray(ref["confidence"], dtype=np.float64)
        if len(self.ref_confidence) != len(self.edges) + 1:
            raise ValueError(f"reference has {len(self.ref_confidence)} confidence bins for "
                             f"{len(self.edges)} edges (expected edges + 1)")
        self.window = window
        self.classes = [0] * len(self.ref_classes)
        self.confidence = [0] * len(self.ref_confidence)
        self._ring = [(0, 0)] * window
        self._pos = 0
        self.count = 0      # answers in the window (<= window)

    def add(self, predicted_class: int, confidence: float) -> None:
        """Slide the window by one answer."""
        b = bisect_left(self.edges, confidence)
        if self.count == self.window:
            old_c, old_b = self._ring[self._pos]
            self.classes[old_c] -= 1
            self.confidence[old_b] -= 1
        else:
            self.count += 1
        self._ring[self._pos] = (predicted_class, b)
        self._pos = (self._pos + 1) % self.window
        self.classes[predicted_class] += 1
        self.confidence[b] += 1

    def psi(self) -> dict:
        """{"class": PSI of the predicted-class mix, "confidence": PSI of the confidence mix}."""
        return {"class": psi(self.classes, self.ref_classes),
                "confidence": psi(self.confidence, self.ref_confidence)}
