"""The data gate: per-image checks (the corruption detector among them), batch checks, a policy and
a quarantine."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..files import atomic_write_bytes
from ..metrics import percent
from .detector import corruption_reasons

# MNIST train class counts (digits 0..9): the default reference for class balance.
MNIST_CLASS_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
QUARANTINE = "quarantine"
REASONS_FILE = "reasons.json"

def duplicate_of(images) -> np.ndarray:
    """int64 (n,): for each image the index of its first exact (pixel-identical) copy, or -1."""
    a = np.asarray(images)
    if len(a) == 0:
        return np.zeros(0, np.int64)
    x = np.ascontiguousarray(a.reshape(len(a), -1))
    rows = x.view(np.dtype((np.void, x.shape[1]))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    owner = first[inverse.ravel()]
    return np.where(owner == np.arange(len(x)), -1, owner).astype(np.int64)


def class_balance(labels, reference=None) -> dict:
    """Observed class shares vs a reference (default: MNIST train); total-variation distance in [0, 1]."""
    ref = np.asarray(MNIST_CLASS_COUNTS if reference is None else reference, dtype=np.float64)
    if ref.shape != (10,) or (ref < 0).any() or ref.sum() <= 0:
        raise ValueError(f"reference must be 10 non-negative class counts or shares, got {reference!r}")
    ref = ref / ref.sum()
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=10)[:10]
    obs = counts / max(counts.sum(), 1)
    return {
        "class_counts": counts.tolist(),
        "observed_share": np.round(obs, 4).tolist(),
        "reference_share": np.round(ref, 4).tolist(),
        "distance": round(float(0.5 * np.abs(obs - ref).sum()), 4) if counts.sum() else None,
    }


@dataclass
class ValidationReport:
    """Outcome of validating one folder; ``to_dict()`` is the JSON report (``bad``: [{file, reason}])."""

    folder: str
    count: int                      # files considered, including earlier-quarantined ones
    good: int
    bad: list                       # [{"file", "reason"}], paths relative to the folder
    balance: dict
    policy: dict
    passed: bool
    failures: list                  # human reasons the policy failed (empty when passed)
    quarantined: list = field(default_factory=list)   # files moved by this run
    images: np.ndarray = field(default=None, repr=False)   # the good images uint8 (good, 28, 28)
    labels: np.ndarray = field(default=None, repr=False)   # their labels int64 (good,)

    @property
    def bad_fraction(self) -> float:
        return len(self.bad) / self.count if self.count else 0.0

    def to_dict(self) -> dict:
        return {
            "folder": self.folder, "passed": self.passed, "failures": self.failures,
            "count": self.count, "good": self.good, "bad_count": len(self.bad),
            "bad_fraction": round(self.bad_fraction, 6), "policy": self.policy,
            "class_counts": self.balance["class_counts"], "class_balance": self.balance,
            "quarantined": self.quarantined, "bad": self.bad,
        }

    def summary(self) -> str:
        """A few human lines: verdict, counts, the commonest reasons, class balance."""
        verdict = "PASS" if self.passed else "FAIL"
        lines = [f"{verdict} {self.folder}: {self.count} images, {self.good} good, {len(self.bad)} bad "
                 f"({percent(self.bad_fraction)}; policy max {percent(self.policy['max_bad_fraction'])})"]
        kinds: dict = {}
        for b in self.bad:
            kind = b["reason"].split(":")[0]
            kinds[kind] = kinds.get(kind, 0) + 1
        if kinds:
            by_count = sorted(kinds.items(), key=lambda t: -t[1])
            lines.append("  bad by kind: " + ", ".join(f"{k} {v}" for k, v in by_count))
            lines.append(f"  e.g. {self.bad[0]['file']}: {self.bad[0]['reason']}")
        if self.balance["distance"] is not None:
            lines.append(f"  class counts {self.balance['class_counts']}, distance from reference "
                         f"{self.balance['distance']:.3f}")
        if self.quarantined:
            lines.append(f"  moved {len(self.quarantined)} files to {Path(self.folder) / QUARANTINE}")
        lines += [f"  policy: {f}" for f in self.failures]
        return "\n".join(lines)


def _previously_quarantined(root: Path) -> list:
    """Bad files quarantined by an earlier run: they still count, so a rerun gives the same verdict."""
    qdir = root / QUARANTINE
    if not qdir.is_dir():
        return []
    try:
        reasons = json.loads((qdir / REASONS_FILE).read_text())
    except (OSError, ValueError):
        reasons = {}
    files = [p for p in sorted(qdir.iterdir())
             if p.is_file() and p.name != REASONS_FILE and not p.name.startswith(".")]
    return [{"file": f"{QUARANTINE}/{p.name}", "reason": reasons.get(p.name, "quarantined by an earlier run")}
            for p in files]


def quarantine_files(root, bad: list) -> list:
    """Move ``bad`` files ({file, reason}, relative to ``root``) into ``root/quarantine/``; never delete.

    Returns the new relative paths; a name already taken by different bytes gets a ``.N`` suffix.
    """
    root = Path(root)
    qdir = root / QUARANTINE
    qdir.mkdir(exist_ok=True)
    try:
        reasons = json.loads((qdir / REASONS_FILE).read_text())
    except (OSError, ValueError):
        reasons = {}
    moved = []
    for b in bad:
        src = root / b["file"]
        if not src.is_file():
            continue
        dest = qdir / src.name
        k = 0
        while dest.exists() and dest.read_bytes() != src.read_bytes():
            k += 1
            dest = qdir / f"{src.name}.{k}"
        os.replace(src, dest)          # same filesystem: an atomic rename, the bytes are kept
        reasons[dest.name] = b["reason"]
        moved.append(f"{QUARANTINE}/{dest.name}")
    atomic_write_bytes(qdir / REASONS_FILE, json.dumps(reasons, indent=1, sort_keys=True).encode())
    return moved


def validate_folder(folder, *, max_bad_fraction: float = 0.01, reference_balance=None,
                    max_class_distance: float | None = None, min_count: int = 1,
                    quarantine: bool = True) -> ValidationReport:
    """Check every image in ``folder`` (decode, 28x28, name and label, duplicates, corruption), apply the
    policy, and move bad files to ``folder/quarantine/`` (unless ``quarantine=False``)."""
    from ..data.images import read_folder  # Pillow stays out of the detector's import path

    if not 0 <= max_bad_fraction <= 1:
        raise ValueError(f"max_bad_fraction must be in [0, 1], got {max_bad_fraction!r}")
    if max_class_distance is not None and not 0 <= max_class_distance <= 1:
        raise ValueError(f"max_class_distance must be in [0, 1] or None, got {max_class_distance!r}")
    root = Path(folder)
    data = read_folder(root)
    bad = list(data.problems)
    keep = np.ones(len(data.files), bool)
    names = [p.relative_to(root).as_posix() for p in data.files]
    for i, reason in enumerate(corruption_reasons(data.images)):
        if reason is not None:
            bad.append({"file": names[i], "reason": reason})
            keep[i] = False
    dup = duplicate_of(data.images)
    for i in np.flatnonzero(dup >= 0):
        if keep[i]:
            j = dup[i]
            same = "" if data.labels[i] == data.labels[j] else f" with a different label ({data.labels[j]})"
            bad.append({"file": names[i], "reason": f"duplicate of {names[j]}{same}"})
            keep[i] = False
    quarantined = quarantine_files(root, bad) if quarantine and bad else []
    earlier = _previously_quarantined(root)
    moved_now = set(quarantined)
    bad = sorted(bad, key=lambda b: b["file"]) + [b for b in earlier if b["file"] not in moved_now]
    good = int(keep.sum())
    count = good + len(bad)
    balance = class_balance(data.labels[keep], reference_balance)
    policy = {"max_bad_fraction": max_bad_fraction, "max_class_distance": max_class_distance,
              "min_count": min_count}
    failures = []
    if count < min_count:
        failures.append(f"{count} images, fewer than the minimum {min_count}")
    if count and len(bad) / count > max_bad_fraction:
        failures.append(f"{percent(len(bad) / count)} bad images, more than the allowed "
                        f"{percent(max_bad_fraction)}")
    if max_class_distance is not None and balance["distance"] is not None \
            and balance["distance"] > max_class_distance:
        failures.append(f"class balance distance {balance['distance']:.3f} above {max_class_distance}")
    return ValidationReport(str(root), count, good, bad, balance, policy, not failures, failures,
                            quarantined, data.images[keep], data.labels[keep])


def write_report(report: ValidationReport, path) -> Path:
    """Write the JSON report atomically; returns the path."""
    path = Path(path)
    atomic_write_bytes(path, (json.dumps(report.to_dict(), indent=1) + "\n").encode())
    return path
