"""Weeks for training: fetch from S3, validate each week, refuse bad ones, load the clean images.

Also builds a week of PNG files from an IDX dataset (what ``scripts/publish_week.py`` uploads).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.fetch import fetch
from ..data.mnist import FILES, load_idx_pair
from . import noise
from .validate import validate_folder, write_report
from .writers import render

_log = logging.getLogger(__name__)


class DataRejected(RuntimeError):
    """A week (or every week) failed the data-quality policy; the message names the report file(s)."""


@dataclass
class WeeksData:
    """Training data from S3 weeks: images uint8 (n, 28, 28), labels int64 (n,), the weeks used,
    the JSON validation reports (one per week fetched) and the weeks skipped as failing."""

    images: np.ndarray
    labels: np.ndarray
    weeks: list
    reports: list
    skipped: list = field(default_factory=list)


def prepare_weeks(uri: str, weeks: str = "all", out_dir: Path = Path("data/weeks"), *,
                  endpoint_url: str | None = None, max_bad_fraction: float = 0.01, jobs: int = 8,
                  progress=None, log=None) -> WeeksData:
    """Fetch ``weeks`` ("latest", "all", "N", "A-B") of ``uri`` into ``out_dir``, validate each week
    (bad files to quarantine/, report to ``out_dir/reports/week-N.json``) and return the clean images.

    With "all", failing weeks are skipped with a warning (``log``, default: this module's logger) and
    DataRejected is raised only if none pass;
    with an explicit week or range, any failing week raises DataRejected. S3 faults raise S3Error.
    """
    log = log or _log.warning
    out_dir = Path(out_dir)
    results = fetch(uri, weeks, out_dir, endpoint_url=endpoint_url, jobs=jobs, progress=progress)
    images, labels, used, reports, failed = [], [], [], [], []
    for r in results:
        report = validate_folder(r.folder, max_bad_fraction=max_bad_fraction)
        path = write_report(report, out_dir / "reports" / f"{r.week}.json")
        reports.append(path)
        if report.passed:
            images.append(report.images)
            labels.append(report.labels)
            used.append(r.week)
        else:
            why = "; ".join(report.failures)
            failed.append((r.week, why, path))
            if str(weeks).strip().lower() == "all":
                log(f"warning: skipping {r.week}: {why} (report: {path})")
    if failed and (str(weeks).strip().lower() != "all" or not used):
        detail = "; ".join(f"{w}: {why} (report: {p})" for w, why, p in failed)
        lead = "no week passed validation" if not used else "week failed validation"
        raise DataRejected(f"refusing to train: {lead}: {detail}")
    return WeeksData(np.concatenate(images), np.concatenate(labels), used, reports,
                     [w for w, _, _ in failed])


def build_week(idx_dir, start: int, count: int, *, split: str = "train", corrupt: bool = False,
               seed: int = 0, writers: str = "mnist") -> dict:
    """A week as ``{NNNNN_label_D.png: png bytes}`` from images ``start .. start+count`` of an IDX folder
    (MNIST file names; ``split`` train or test); ``corrupt`` swaps every image for seeded noise;
    ``writers="slanted"`` re-renders the digits as another population of writers would (a drill)."""
    from ..data.images import encode_png, format_name

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = Path(idx_dir)
    x, y = load_idx_pair(folder / FILES[f"{split}_images"], folder / FILES[f"{split}_labels"])
    if start < 0 or count < 1:
        raise ValueError(f"start must be >= 0 and count >= 1, got start={start}, count={count}")
    if start + count > len(x):
        raise IndexError(f"images {start}..{start + count - 1} do not fit the {len(x)} {split} images")
    images, labels = render(x[start:start + count], writers), y[start:start + count]
    if corrupt:
        images = noise.mixed(count, seed=seed, digits=images)
    pairs = enumerate(zip(images, labels, strict=True))
    return {format_name(start + i, int(lab)): encode_png(img) for i, (img, lab) in pairs}
