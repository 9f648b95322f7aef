"""Honest answers from an MLP: a temperature that calibrates its probabilities and the reject rule.

After training, ``fit_temperature`` finds the one scalar T that minimises the log loss of
softmax(logits / T) on held-out data (never the test set). ``choose_thresholds`` then sets the reject
rule's thresholds on held-out digits under ``POLICY``. ``decide`` applies the rule: "not a digit" when
the largest raw logit is below ``min_logit`` (a model trained with outlier exposure scores non-digits
low on every class); else answer when the calibrated top probability reaches ``min_confidence``;
otherwise "unsure" when the top two classes hold ``min_pair`` of the mass (between two digits), else
"not a digit".
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .config import strict_from_dict
from .losses import log_softmax, softmax

ANSWER, UNSURE, NOT_A_DIGIT = 0, 1, 2
REASONS = {UNSURE: "unsure", NOT_A_DIGIT: "not_a_digit"}

# The policy the thresholds are chosen under, on held-out digits (saved with them in the model file):
# ``min_logit`` calls at most ``max_not_a_digit`` of them "not a digit"; then the lowest confidence
# threshold whose error among the answered is at most ``target_error``, as long as at most
# ``max_reject`` are rejected in all; ``min_pair`` calls at most ``unsure_floor`` of them "not a digit"
# rather than "unsure" among the low-confidence ones.
POLICY = {"target_error": 0.002, "max_reject": 0.015, "max_not_a_digit": 0.01, "unsure_floor": 0.001}


@dataclass(frozen=True)
class Calibration:
    """A temperature for the logits and the reject rule's thresholds (with the held-out figures)."""

    temperature: float
    min_confidence: float = 0.0   # answer when the calibrated top probability is at least this
    min_pair: float = 0.0         # below it: "unsure" when the top two hold this much, else "not a digit"
    min_logit: float | None = None  # "not a digit" when the largest raw logit is below this (None: unused)
    policy: dict = dataclasses.field(default_factory=lambda: dict(POLICY))
    held_out: dict = dataclasses.field(default_factory=dict)  # figures on the held-out split

    def __post_init__(self):
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {self.temperature!r}")
        for name in ("min_confidence", "min_pair"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")

        if self.min_logit is not None and not math.isfinite(self.min_logit):
            raise ValueError(f"min_logit must be a finite number or None, got {self.min_logit!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Calibration":
        return strict_from_dict(cls, d, "calibration")


def nll(logits, y, temperature: float) -> float:
    """Mean negative log-likelihood of softmax(logits / temperature) at labels y."""
    z = np.asarray(logits, np.float64) / temperature
    return float(-log_softmax(z)[np.arange(len(y)), y].mean())


def fit_temperature(logits, y, lo: float = 0.05, hi: float = 20.0, steps: int = 60) -> float:
    """The temperature T minimising the held-out log loss of softmax(logits / T): golden-section search
    over log T in [lo, hi] (the loss is convex in 1 / T). logits (n, k), y (n,) int labels."""
    y = np.asarray(y)
    if len(y) == 0 or np.asarray(logits).shape != (len(y), np.asarray(logits).shape[1]):
        raise ValueError("fit_temperature needs (n, k) logits and n labels, n >= 1")
    a, b = math.log(lo), math.log(hi)
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = nll(logits, y, math.exp(c)), nll(logits, y, math.exp(d))
    for _ in range(steps):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = nll(logits, y, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = nll(logits, y, math.exp(d))
    return float(math.exp((a + b) / 2))


def calibrated_proba(logits, calibration: Calibration | None):
    """softmax(logits / temperature), or softmax(logits) without a calibration: (n, k) float32. In place
    on ``logits``, which the caller gives up."""
    if calibration is not None:
        logits *= np.float32(1.0 / calibration.temperature)
    return softmax(logits)


def top_two(p):
    """(top probability, top-two mass, top class, second class) of probabilities p (n, k)."""
    order = np.argsort(p, axis=1)
    rows = np.arange(len(p))
    first, second = order[:, -1], order[:, -2]
    p1 = p[rows, first]
    return p1, p1 + p[rows, second], first, second


def decide(p, calibration: Calibration | None, max_logit=None):
    """Per row of calibrated probabilities p (n, k) and, for ``min_logit``, the rows' largest raw logit
    (n,): ANSWER, UNSURE or NOT_A_DIGIT (int8 (n,)).

    Without a calibration (a model file from before it existed) every row is answered."""
    out = np.zeros(len(p), np.int8)
    if calibration is None or not len(p):
        return out
    two = np.partition(p, -2, axis=1)[:, -2:]   # each row's two largest values, the larger last
    p1 = two[:, 1]
    pair = p1 + two[:, 0]   # top_two's values, without sorting whole rows
    low = p1 < calibration.min_confidence
    out[low & (pair >= calibration.min_pair)] = UNSURE
    out[low & (pair < calibration.min_pair)] = NOT_A_DIGIT
    if calibration.min_logit is not None and max_logit is not None:
        out[np.asarray(max_logit) < calibration.min_logit] = NOT_A_DIGIT
    return out


def selective_risk(p, y):
    """The selective-risk curve: answering the most confident first, (share answered, error among the
    answered) at every cut, as two float64 arrays of length n (share k / n for k = 1..n)."""
    y = np.asarray(y)
    order = np.argsort(-np.asarray(p).max(axis=1), kind="stable")
    wrong = (np.asarray(p).argmax(axis=1) != y)[order]
    k = np.arange(1, len(y) + 1)
    return k / len(y), np.cumsum(wrong) / k


def reject_for_error(p, y, target: float = 0.005) -> float:
    """The smallest share of rows to reject (least confident first) so that the answered rows' error is
    at most ``target``; 1.0 if no cut reaches it."""
    share, risk = selective_risk(p, y)
    ok = np.flatnonzero(risk <= target)
    return float(1.0 - share[ok[-1]]) if len(ok) else 1.0


def choose_thresholds(p, y, policy: dict | None = None, max_logit=None) -> dict:
    """{min_confidence, min_pair, min_logit} for held-out digits' calibrated probabilities p (n, k), labels
    y and largest raw logits (n,) (None: no ``min_logit``), under ``policy`` (default ``POLICY``)."""
    policy = {**POLICY, **(policy or {})}
    p, y = np.asarray(p), np.asarray(y)
    n = len(y)
    p1, pair, _, _ = top_two(p)
    min_logit = None
    rejected = np.zeros(n, bool)
    if max_logit is not None:
        min_logit = float(np.quantile(max_logit, policy["max_not_a_digit"]))
        rejected = np.asarray(max_logit) < min_logit
    keep = np.flatnonzero(~rejected)
    order = keep[np.argsort(-p1[keep], kind="stable")]
    conf = p1[order]
    risk = np.cumsum(p.argmax(1)[order] != y[order]) / np.arange(1, len(order) + 1)
    least = min(int(math.ceil(n * (1.0 - policy["max_reject"]))), len(order))  # answer at least this many
    ok = np.flatnonzero(risk <= policy["target_error"])
    answered = max(int(ok[-1]) + 1 if len(ok) else 0, least)
    # the threshold sits halfway to the next row's confidence, so that exactly ``answered`` pass
    below = conf[answered] if answered < len(conf) else 0.0
    min_confidence = float((conf[answered - 1] + below) / 2) if answered else 1.0
    min_pair = min(float(np.quantile(pair, policy["unsure_floor"])), min_confidence)
    return {"min_confidence": min_confidence, "min_pair": min_pair, "min_logit": min_logit}
