"""The gate's honesty checks: calibration (ECE) and the reject option (share rejected for 0.5% error).

Numerics only. ``honesty_metrics`` measures one model's probabilities; ``honesty_checks`` compares a
candidate with production under the policy's margins, in the way accuracy is compared: a candidate
clearly worse than production fails. ECE is compared only when both models are calibrated (a model file
from before calibration has no temperature); the check then says so and passes.
"""
from __future__ import annotations

import numpy as np

from ..metrics import percent
from ..nn.calibration import decide, reject_for_error, selective_risk
from .gate import _EPS, Check

TARGET_ERROR = 0.005   # the 1995 comparison's yardstick: the share rejected to reach 0.5% error
CURVE_POINTS = 50


def honesty_metrics(model, proba, y, max_logit=None) -> dict:
    """Per model: calibrated or not, the share rejected to reach 0.5% error, the selective-risk curve
    (share answered, error among answered; ``CURVE_POINTS`` points) and its own thresholds' outcome."""
    share, risk = selective_risk(proba, y)
    at = np.unique(np.linspace(0, len(y) - 1, CURVE_POINTS).round().astype(int))
    cal = getattr(model, "calibration", None)
    verdict = decide(proba, cal, max_logit)
    answered = verdict == 0
    wrong = proba.argmax(axis=1) != y
    return {
        "calibrated": cal is not None,
        "temperature": cal.temperature if cal is not None else None,
        "reject_for_0.5pct_error": reject_for_error(proba, y, TARGET_ERROR),
        "selective_risk": {"answered": share[at].round(5).tolist(), "error": risk[at].round(5).tolist()},
        "abstained": float(1 - answered.mean()),
        "error_answered": float(wrong[answered].mean()) if answered.any() else 0.0,
        "reliability": reliability_bins(proba, y),
    }


def reliability_bins(proba, y, n_bins: int = 15) -> dict:
    """Per confidence bin (as the ECE's): mean confidence, accuracy and count, as lists."""
    conf, right = proba.max(axis=1), proba.argmax(axis=1) == y
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    safe = np.maximum(count, 1)
    return {"confidence": (np.bincount(bins, conf, n_bins) / safe).round(5).tolist(),
            "accuracy": (np.bincount(bins, right, n_bins) / safe).round(5).tolist(),
            "count": count.tolist()}


def honesty_checks(cand: dict, prod: dict, policy) -> list:
    """Checks "calibration" and "reject_rate" of candidate metrics against production metrics (the
    ``evaluate`` dicts, with ``ece`` and the ``honesty_metrics`` keys)."""
    if cand["calibrated"] and prod["calibrated"]:
        ok = cand["ece"] <= prod["ece"] + policy.max_ece_rise + _EPS
        ece = Check("calibration", ok, f"ECE candidate {percent(cand['ece'])} vs production "
                    f"{percent(prod['ece'])} + margin {percent(policy.max_ece_rise)}")
    else:
        which = " and ".join(n for n, m in (("candidate", cand), ("production", prod)) if not m["calibrated"])
        ece = Check("calibration", True, f"not compared: {which} not calibrated (a model file without a "
                    f"temperature); ECE candidate {percent(cand['ece'])}, production {percent(prod['ece'])}")
    c, p = cand["reject_for_0.5pct_error"], prod["reject_for_0.5pct_error"]
    rej = Check("reject_rate", c <= p + policy.max_reject_rise + _EPS,
                f"rejected for {percent(TARGET_ERROR)} error: candidate {percent(c)} vs production "
                f"{percent(p)} + margin {percent(policy.max_reject_rise)}")
    return [ece, rej]
