"""The data gate: a corruption detector for 28x28 digits, batch checks, a policy and a quarantine.

The detector is a handful of cheap image statistics with thresholds set on MNIST *train* images
(with margin beyond the most extreme real digit); it is shared by validation and the service.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .idx import atomic_write_bytes

# MNIST train class counts (digits 0..9): the default reference for class balance.
MNIST_CLASS_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
QUARANTINE = "quarantine"
REASONS_FILE = "reasons.json"

# Outer 3-pixel ring: MNIST centres a 20x20 digit box in 28x28, so real ink rarely reaches it.
_RING_INDEX = np.flatnonzero(np.pad(np.zeros((22, 22), bool), 3, constant_values=True))
_LEVELS = np.arange(256, dtype=np.float64) / 255
_CHUNK = 4096
_OFFSETS = np.arange(0, 256 * _CHUNK, 256, dtype=np.int64)[:, None]   # per-image histogram offsets

# (statistic, test, threshold, message). Worst MNIST train value in the comment; test set agrees.
# Order matters only for which reason is reported first.
RULES = (
    ("ink", "<", 10.0, "blank: ink of only {:.0f} px (digits: > 10)"),          # min 19.6
    ("mid", ">", 0.17, "noise: {:.0%} mid-gray pixels (digits: < 17%)"),         # max 12.9%
    ("background", "<", 0.50, "noise: only {:.0%} background pixels (digits: > 50%)"),  # min 55.6%
    ("faint", ">", 0.10, "noise: {:.0%} faint gray pixels (digits: < 10%)"),     # max 7.4%
    ("solid", "<", 0.10, "noise: no solid strokes, {:.0%} of ink saturated (digits: > 10%)"),  # min 13%
    ("border", ">", 20.0, "noise: ink at the border ({:.0f} px; digits: < 20)"),  # max 15
    ("speckle", ">", 10, "noise: {:.0f} isolated ink pixels (digits: <= 10)"),    # max 9
    ("speckle_share", ">", 0.35, "noise: {:.0%} of ink pixels isolated (digits: < 35%)"),  # max 19.5%
    ("roughness", ">", 2.6, "noise: edges {:.1f}x the ink mass (digits: < 2.6x)"),  # max 2.2
)


def image_stats(images) -> dict:
    """Per-image statistics of uint8 (n, 28, 28) images, each a float/int array (n,); see RULES."""
    x = np.asarray(images)
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError(f"images must be uint8 (n, 28, 28), got {x.dtype} {x.shape}")
    if len(x) <= _CHUNK:
        return _stats(x)
    parts = [_stats(x[i:i + _CHUNK]) for i in range(0, len(x), _CHUNK)]   # bounds temporary memory
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _stats(x: np.ndarray) -> dict:
    n = len(x)
    f = x.reshape(n, 784)
    # One histogram per image (a single bincount over offset values) gives every level-range count.
    hist = np.bincount((f + _OFFSETS[:n] if n > 1 else f).ravel(), minlength=256 * n).reshape(n, 256)
    below = np.cumsum(hist, axis=1)                     # below[:, v] = pixels <= v
    ink = hist @ _LEVELS                                # in full-white pixels
    inked = x > 127
    # An ink pixel is isolated when none of its 4 neighbours is ink (speckle, not strokes).
    p = np.zeros((n, 30, 30), bool)
    p[:, 1:-1, 1:-1] = inked
    nb = p[:, :-2, 1:-1] | p[:, 2:, 1:-1] | p[:, 1:-1, :-2] | p[:, 1:-1, 2:]
    isolated = (inked & ~nb).reshape(n, 784).sum(axis=1)
    xi = x.astype(np.int16)
    tv = np.abs(xi[:, :, 1:] - xi[:, :, :-1]).sum(axis=(1, 2)) + np.abs(xi[:, 1:] - xi[:, :-1]).sum(axis=(1, 2))
    return {
        "mid": (below[:, 205] - below[:, 49]) / 784,
        "background": below[:, 25] / 784,
        "faint": (below[:, 50] - below[:, 4]) / 784,
        "solid": (784 - below[:, 205]) / np.maximum(784 - below[:, 25], 1),
        "border": f[:, _RING_INDEX].sum(axis=1) / 255,
        "speckle": isolated,
        "speckle_share": isolated / np.maximum(784 - below[:, 127], 1),
        "roughness": tv / 255 / np.maximum(ink, 1e-3),
        "ink": ink,
    }


def corruption_reasons(images) -> list:
    """uint8 (n, 28, 28) -> list of n reasons: None when an image looks like a handwritten digit,
    else a short human reason for the first failed check (e.g. "noise: 61% mid-gray pixels ...")."""
    stats = image_stats(images)
    n = len(next(iter(stats.values())))
    reasons: list = [None] * n
    for name, op, limit, message in reversed(RULES):  # reversed: the first rule's reason wins
        v = stats[name]
        for i in np.flatnonzero(v > limit if op == ">" else v < limit):
            reasons[i] = message.format(v[i])
    return reasons


def is_corrupt(image) -> str | None:
    """One uint8 (28, 28) image -> None if it looks like a digit, else the reason (as corruption_reasons)."""
    a = np.asarray(image)
    if a.shape != (28, 28):
        raise ValueError(f"image must be (28, 28), got shape {a.shape}")
    return corruption_reasons(a[None])[0]


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
                 f"({self.bad_fraction:.2%}; policy max {self.policy['max_bad_fraction']:.2%})"]
        kinds: dict = {}
        for b in self.bad:
            kind = b["reason"].split(":")[0]
            kinds[kind] = kinds.get(kind, 0) + 1
        if kinds:
            lines.append("  bad by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items(), key=lambda t: -t[1])))
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
    return [{"file": f"{QUARANTINE}/{p.name}", "reason": reasons.get(p.name, "quarantined by an earlier run")}
            for p in sorted(qdir.iterdir()) if p.is_file() and p.name != REASONS_FILE and not p.name.startswith(".")]


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
    from .images import read_folder    # Pillow stays out of the detector's import path

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
        failures.append(f"{len(bad) / count:.2%} bad images, more than the allowed {max_bad_fraction:.2%}")
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
