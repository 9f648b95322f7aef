"""load_mnist: the four MNIST IDX files from MNISTLITE_DATA_DIR, a cache folder, or a verified download."""
from __future__ import annotations

import gzip
import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from ..files import atomic_write_bytes
from ..nn.arrays import to_float
from .idx import IDXError, read_idx

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
# SHA-256 of the *uncompressed* IDX content: gzip wrappers differ between mirrors, content does not.
CONTENT_SHA256 = {
    "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
ENV_VAR = "MNISTLITE_DATA_DIR"
_log = logging.getLogger(__name__)


class DatasetError(RuntimeError):
    """The dataset could not be found, read or verified; the message says what to do."""


def cache_dir() -> Path:
    """Where downloads go: $XDG_CACHE_HOME/mnistlite/mnist (default ~/.cache/mnistlite/mnist)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mnistlite" / "mnist"


def _has_all(folder: Path) -> bool:
    return all((folder / name).is_file() for name in FILES.values())


def mirrors() -> tuple:
    """Download sources: $MNISTLITE_MNIST_MIRRORS (comma-separated URL prefixes) or the public mirrors."""
    env = os.environ.get("MNISTLITE_MNIST_MIRRORS")
    return tuple(m.strip() for m in env.split(",") if m.strip()) if env else MIRRORS


def _download(folder: Path, timeout: float = 30.0) -> None:
    import urllib.error  # imported here: urllib.request is slow to import, paid only when downloading
    import urllib.request

    for name in FILES.values():
        if (folder / name).is_file():
            continue
        errors = []
        for mirror in mirrors():
            try:
                with urllib.request.urlopen(mirror + name, timeout=timeout) as r:
                    blob = r.read()
            except (urllib.error.URLError, OSError) as e:
                errors.append(f"{mirror}: {getattr(e, 'reason', e)}")
                continue
            try:
                digest = hashlib.sha256(gzip.decompress(blob)).hexdigest()
            except OSError:
                digest = "not gzip"
            if digest != CONTENT_SHA256[name]:
                errors.append(f"{mirror}: SHA-256 mismatch")
                continue
            atomic_write_bytes(folder / name, blob)
            break
        else:
            raise DatasetError(f"could not download {name} ({'; '.join(errors)}); offline? "
                               f"set {ENV_VAR} to a folder holding the four MNIST .gz files")
        _log.info("downloaded %s to %s", name, folder)


def find_mnist(data_dir=None, download: bool = True) -> Path:
    """The folder holding the four MNIST files: ``data_dir``, $MNISTLITE_DATA_DIR, the cache, or a
    download."""
    explicit = data_dir or os.environ.get(ENV_VAR)
    if explicit:
        folder = Path(explicit)
        if not _has_all(folder):
            missing = [n for n in FILES.values() if not (folder / n).is_file()]
            src = "data_dir" if data_dir else ENV_VAR
            raise DatasetError(f"{src}={folder} is missing {', '.join(missing)}; point it at a folder "
                               f"with the four MNIST IDX .gz files")
        return folder
    folder = cache_dir()
    if _has_all(folder):
        return folder
    if not download:
        raise DatasetError(f"MNIST not found in {folder}; set {ENV_VAR} or allow download")
    folder.mkdir(parents=True, exist_ok=True)
    _download(folder)
    return folder


def load_idx_pair(images_path, labels_path):
    """uint8 images (n, 28, 28) and int64 labels (n,) from two IDX files that must agree in length."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise IDXError(f"{images_path}: expected uint8 images (n, rows, cols), "
                       f"got {images.dtype} {images.shape}")
    if labels.ndim != 1:
        raise IDXError(f"{labels_path}: expected 1-D labels, got shape {labels.shape}")
    if len(images) != len(labels):
        raise IDXError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
    return images, labels.astype(np.int64)


def load_mnist(data_dir=None, *, as_float: bool = True, download: bool = True):
    """Return ((x_train, y_train), (x_test, y_test)).

    x: float32 (n, 784) in [0, 1] (or uint8 (n, 28, 28) with ``as_float=False``); y: int64 (n,).
    Looks in ``data_dir``, then $MNISTLITE_DATA_DIR, then the cache, then downloads (SHA-256 checked).
    """
    folder = find_mnist(data_dir, download=download)
    out = []
    for split in ("train", "test"):
        x, y = load_idx_pair(folder / FILES[f"{split}_images"], folder / FILES[f"{split}_labels"])
        out.append((to_float(x) if as_float else x, y))
    return tuple(out)


def data_sha256(*arrays) -> str:
    """SHA-256 over the raw bytes of arrays (e.g. training images and labels): a data fingerprint."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.data)
    return h.hexdigest()
