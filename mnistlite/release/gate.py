"""The evaluation gate: is a candidate model at least as good as production on the same test set?

Numerics only (no I/O): predictions in, a ``Verdict`` out. ``mnistlite.evaluation`` loads the
models and the test set; ``mnistlite.report`` renders the verdict.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ..metrics import accuracy, mcnemar_exact, mcnemar_table, per_class_report, percent

_EPS = 1e-12  # float slack so a drop of exactly the allowed size passes


@dataclass(frozen=True)
class Policy:
    """When a candidate passes; every threshold is an accuracy/recall fraction in [0, 1]."""

    min_accuracy: float = 0.97        # absolute floor, applies on first deploy too
    max_drop: float = 0.002           # non-inferiority margin on overall accuracy
    max_class_drop: float = 0.01      # largest recall loss allowed on any one class
    alpha: float = 0.05               # McNemar significance level for "significantly worse"
    require_improvement: bool = False  # the strict rule: candidate accuracy > production accuracy
    max_group_drop: float = 0.01      # largest accuracy loss allowed on any writer group
    max_ece_rise: float = 0.005       # candidate ECE <= production's + this (when both are calibrated)
    max_reject_rise: float = 0.005    # share rejected for 0.5% error <= production's + this

    def __post_init__(self):
        for name in ("min_accuracy", "max_drop", "max_class_drop", "max_group_drop", "max_ece_rise",
                     "max_reject_rise"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v!r}")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Check:
    """One rule of the policy and how the candidate fared on it."""

    name: str
    passed: bool
    detail: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Verdict:
    """Outcome of ``compare``: status "pass" or "fail", one Check per rule applied, and the numbers."""

    passed: bool
    status: str
    reasons: list
    checks: list
    policy: Policy
    candidate: dict                 # accuracy, recall (per class)
    production: dict | None         # same keys, None on first deploy
    mcnemar: dict | None            # b, c, p_value; None on first deploy
    first_deploy: bool
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"passed": self.passed, "status": self.status, "reasons": list(self.reasons),
                "checks": [c.to_dict() for c in self.checks], "policy": self.policy.to_dict(),
                "candidate": self.candidate, "production": self.production, "mcnemar": self.mcnemar,
                "first_deploy": self.first_deploy, **self.extra}


def _summary(y_true, y_pred, n_classes, groups=None):
    out = {"accuracy": accuracy(y_true, y_pred),
           "recall": per_class_report(y_true, y_pred, n_classes)["recall"]}
    if groups:
        out["groups"] = {name: accuracy(y_true[lo:hi], y_pred[lo:hi]) for name, (lo, hi) in groups.items()}
    return out


def _group_check(cand: dict, prod: dict, policy: Policy) -> Check:
    """Accuracy on each writer group may drop at most ``max_group_drop``, whatever the total does."""
    drops = {g: prod["groups"][g] - cand["groups"][g] for g in cand["groups"]}
    worst = max(drops, key=drops.get)
    bad = [g for g, d in drops.items() if d > policy.max_group_drop + _EPS]
    detail = (f"largest accuracy drop {percent(max(drops[worst], 0.0))} on {worst} "
              f"(allowed {percent(policy.max_group_drop)})")
    if bad:
        detail += "; over the limit: " + ", ".join(
            f"{g} {percent(prod['groups'][g])} -> {percent(cand['groups'][g])}" for g in bad)
    return Check("writer_groups", not bad, detail)


def compare(y_true, pred_candidate, pred_production=None, policy: Policy | None = None,
            n_classes: int = 10, groups: dict | None = None) -> Verdict:
    """Judge candidate predictions against production predictions (or None: first deploy).

    y_true, pred_candidate, pred_production: (n,) int labels on the same test samples.
    groups: {name: (start, stop)} index ranges of writer groups, each judged on its own accuracy.
    """
    policy = policy or Policy()
    y = np.asarray(y_true, dtype=np.int64)
    pc = np.asarray(pred_candidate, dtype=np.int64)
    if pc.shape != y.shape:
        raise ValueError(f"candidate predictions have shape {pc.shape}, labels {y.shape}")
    for name, (lo, hi) in (groups or {}).items():
        if not 0 <= lo < hi <= len(y):
            raise ValueError(f"writer group {name!r} spans {lo}..{hi}, outside the {len(y)} test samples")
    cand = _summary(y, pc, n_classes, groups)
    floor = f"candidate accuracy {percent(cand['accuracy'])} vs floor {percent(policy.min_accuracy)}"
    checks = [Check("min_accuracy", cand["accuracy"] + _EPS >= policy.min_accuracy, floor)]
    prod = mc = None
    if pred_production is not None:
        pp = np.asarray(pred_production, dtype=np.int64)
        if pp.shape != y.shape:
            raise ValueError(f"production predictions have shape {pp.shape}, labels {y.shape}")
        prod = _summary(y, pp, n_classes, groups)
        ca, pa = cand["accuracy"], prod["accuracy"]
        margin = f"candidate {percent(ca)} vs production {percent(pa)} - margin {percent(policy.max_drop)}"
        checks.append(Check("non_inferiority", ca + _EPS >= pa - policy.max_drop, margin))
        drops = np.asarray(prod["recall"]) - np.asarray(cand["recall"])
        worst = int(np.argmax(drops))
        bad = [int(k) for k in np.flatnonzero(drops > policy.max_class_drop + _EPS)]
        detail = (f"largest recall drop {percent(max(drops[worst], 0.0))} on digit {worst} "
                  f"(allowed {percent(policy.max_class_drop)})")
        if bad:
            detail += "; over the limit: " + ", ".join(f"digit {k} -{percent(drops[k])}" for k in bad)
        checks.append(Check("class_recall", not bad, detail))
        if groups:
            checks.append(_group_check(cand, prod, policy))
        b, c = mcnemar_table(pc == y, pp == y)  # b: only candidate right, c: only production right
        p = mcnemar_exact(b, c)
        mc = {"b": b, "c": c, "p_value": p}
        worse = c > b and p < policy.alpha
        checks.append(Check("mcnemar", not worse,
                            f"b={b} (only candidate right), c={c} (only production right), p={p:.4g}: "
                            + ("candidate significantly worse" if worse else "not significantly worse")
                            + f" at alpha={policy.alpha}"))
        if policy.require_improvement:
            checks.append(Check("improvement", ca > pa + _EPS,
                                f"candidate {percent(ca)} must beat production {percent(pa)}"))
    reasons = [f"{c.name}: {c.detail}" for c in checks if not c.passed]
    if prod is None:
        reasons.append("first deploy: no production model, only the accuracy floor applies")
    passed = all(c.passed for c in checks)
    return Verdict(passed=passed, status="pass" if passed else "fail", reasons=reasons, checks=checks,
                   policy=policy, candidate=cand, production=prod, mcnemar=mc,
                   first_deploy=prod is None)
