"""Folders of weekly digit images named ``NNNNN_label_D.png``: read them into arrays, write them back.

A name is a sample id of five or more digits and a label 0-9; bad names are reported, never guessed.
``read_folder`` skips hidden files, ``quarantine/`` folders and ``.json``/``.md`` report files; every
other file it cannot use becomes a ``{"file", "reason"}`` problem instead of an exception.
"""
from __future__ import annotations

import io
import operator
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..files import atomic_write_bytes
from ..images.decode import ImageError, decode_image

NAME_PATTERN = re.compile(r"([0-9]{5,})_label_([0-9])\.png")
_LOOSE_PATTERN = re.compile(r"([0-9]{5,})_label_(-?[0-9]+)\.png")  # only to say why a label is bad
IGNORED_SUFFIXES = (".json", ".md")  # validator / publisher reports living beside the images
QUARANTINE = "quarantine"
SIZE = 28
_WRITE_THREADS = 8


@dataclass
class ImageFolder:
    """Usable images uint8 (n, 28, 28), labels int64 (n,), their files (by sample id) and the problems."""

    images: np.ndarray
    labels: np.ndarray
    files: list[Path] = field(default_factory=list)
    problems: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.files)


def parse_name(name) -> tuple[int, int]:
    """``"00042_label_7.png"`` (or a path ending so) -> (42, 7); ValueError saying what does not fit."""
    base = os.path.basename(os.fspath(name))
    m = NAME_PATTERN.fullmatch(base)
    if m:
        return int(m.group(1)), int(m.group(2))
    loose = _LOOSE_PATTERN.fullmatch(base)
    if loose:
        raise ValueError(f"label {loose.group(2)} not in 0-9")
    raise ValueError("name does not match NNNNN_label_D.png")


def format_name(sample_id: int, label: int) -> str:
    """(42, 7) -> ``"00042_label_7.png"``; ValueError for a negative id or a label outside 0-9."""
    sample_id, label = operator.index(sample_id), operator.index(label)
    if sample_id < 0:
        raise ValueError(f"sample_id must be >= 0, got {sample_id!r}")
    if not 0 <= label <= 9:
        raise ValueError(f"label must be in 0-9, got {label!r}")
    return f"{sample_id:05d}_label_{label}.png"


def encode_png(image) -> bytes:
    """uint8 (h, w) grayscale image (MNIST: (28, 28)) -> 8-bit grayscale PNG bytes (deterministic)."""
    from PIL import Image

    a = np.ascontiguousarray(image)
    if a.dtype != np.uint8 or a.ndim != 2 or a.size == 0:
        raise ValueError(f"encode_png expects a non-empty uint8 (h, w) array, got {a.dtype} {a.shape}")
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def _decode_png(path: Path):
    """One file -> (uint8 (28, 28) maybe read-only, None) or (None, reason)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        return None, f"cannot read ({e.strerror or e})"
    try:
        # Any size but 28x28 is reported as such, from the header (Pillow still refuses bombs).
        return decode_image(data, formats=("PNG",), size=(SIZE, SIZE), copy=False), None
    except ImageError as e:
        return None, str(e)


def _candidates(root: Path, recursive: bool):
    """Posix paths relative to ``root`` of the files to consider: no hidden entries, quarantine/, reports."""
    for dirpath, dirnames, filenames in os.walk(root):
        keep = (d for d in dirnames if not d.startswith(".") and d != QUARANTINE)
        dirnames[:] = sorted(keep) if recursive else []
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        for name in filenames:
            if not name.startswith(".") and not name.lower().endswith(IGNORED_SUFFIXES):
                yield prefix + name


def read_folder(folder, *, recursive: bool = False) -> ImageFolder:
    """Read every ``NNNNN_label_D.png`` in ``folder`` (and in its subfolders when ``recursive``).

    Returns an ImageFolder sorted by sample id; unusable files (bad name, not PNG, corrupt, not 28x28,
    duplicate sample id) are listed in ``problems`` sorted by file. Raises FileNotFoundError if no folder.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    problems, named = [], []
    for rel in _candidates(root, recursive):
        if not rel.lower().endswith(".png"):
            problems.append({"file": rel, "reason": "not a .png file"})
            continue
        try:
            named.append((*parse_name(rel), rel))
        except ValueError as e:
            problems.append({"file": rel, "reason": str(e)})
    named.sort(key=lambda t: (t[0], t[2]))
    # Sequential on purpose: for 28x28 PNGs the work is Python-bound, so threads do not help.
    images = np.empty((len(named), SIZE, SIZE), np.uint8)
    labels, files, first = [], [], {}
    for sample_id, label, rel in named:
        img, reason = _decode_png(root / rel)
        if reason is None and sample_id in first:
            reason = f"duplicate sample id {sample_id} (also {first[sample_id]})"
        if reason is not None:
            problems.append({"file": rel, "reason": reason})
            continue
        first[sample_id] = rel
        images[len(files)] = img
        labels.append(label)
        files.append(root / rel)
    problems.sort(key=lambda p: p["file"])
    images = images if len(files) == len(named) else images[:len(files)].copy()
    return ImageFolder(images, np.array(labels, dtype=np.int64), files, problems)


def write_folder(folder, images, labels, *, start_id: int = 0) -> list[Path]:
    """Write uint8 (n, 28, 28) images as ``{start_id + i:05d}_label_{labels[i]}.png``, each atomically.

    Returns the paths written; existing files of the same name are replaced.
    """
    a = np.asarray(images)
    y = np.asarray(labels)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[1:] != (SIZE, SIZE):
        raise ValueError(f"images must be uint8 (n, {SIZE}, {SIZE}), got {a.dtype} {a.shape}")
    if y.shape != (a.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers of shape ({a.shape[0]},), got {y.dtype} {y.shape}")
    if y.size and (y.min() < 0 or y.max() > 9):
        raise ValueError(f"labels must be in 0-9, got values from {y.min()} to {y.max()}")
    start_id = operator.index(start_id)
    if start_id < 0:
        raise ValueError(f"start_id must be >= 0, got {start_id!r}")
    root = Path(folder)
    paths = [root / format_name(start_id + i, int(label)) for i, label in enumerate(y)]
    if not paths:
        return paths
    root.mkdir(parents=True, exist_ok=True)

    def write(i: int) -> None:
        atomic_write_bytes(paths[i], encode_png(a[i]))

    # Each atomic write ends in an fsync, which releases the GIL: threads overlap them.
    with ThreadPoolExecutor(max_workers=_WRITE_THREADS) as pool:
        for _ in pool.map(write, range(len(paths))):
            pass
    return paths
