"""Model files: ``.npz`` holding W0, b0, W1, b1, ... plus one JSON metadata entry.

Loading never unpickles (``allow_pickle=False``) and checks the format version, every array's
name, shape, dtype and finiteness, so a corrupt, truncated or foreign file raises ``ModelFileError``.
"""
from __future__ import annotations

import hashlib
import io
import itertools
import json
import threading
import zipfile
from pathlib import Path

import numpy as np

from . import __version__
from .files import atomic_write_bytes, utc_now
from .images.preprocess import PREPROCESSING_VERSION
from .nn.config import TrainConfig
from .nn.model import MLP

FORMAT = "mnistlite.mlp"
FORMAT_VERSION = 1
META_KEY = "__meta__"


class ModelFileError(ValueError):
    """A model file is missing, corrupt, truncated, foreign or from an unknown format version."""


def save(model: MLP, path, metadata: dict | None = None, *, float16: bool = False) -> Path:
    """Write ``model`` to ``path`` atomically; ``metadata`` (JSON-able) is stored under "user".

    float16 halves the file; weights are widened back to float32 on load.
    """
    path = Path(path)
    store = np.float16 if float16 else np.float32
    arrays = {}
    for i, (W, b) in enumerate(model.weights):
        arrays[f"W{i}"] = W.astype(store)
        arrays[f"b{i}"] = b.astype(store)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "layer_sizes": model.layer_sizes,
        "activation": model.activation,
        "dtype": np.dtype(store).name,
        "preprocessing_version": PREPROCESSING_VERSION,
        "mnistlite_version": __version__,
        "config": model.config.to_dict() if model.config else None,
        "created": utc_now(),
        **{k: v for k, v in model.metadata.items() if k not in ("user",)},
    }
    if metadata:
        meta["user"] = {**model.metadata.get("user", {}), **metadata}
    elif "user" in model.metadata:
        meta["user"] = model.metadata["user"]
    arrays[META_KEY] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    # Uncompressed: float weights hardly shrink under zlib, and loading skips the inflate.
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())
    return path


# numpy parses each .npy header with ast.literal_eval, and CPython 3.11 can fail with "SystemError: AST
# constructor recursion depth mismatch" when threads do that at once (python/cpython gh-106905; seen in the
# concurrent-promotion test), which would read as a damaged file. Model reads are rare: one lock is enough.
_READ_LOCK = threading.Lock()


def _fail(path, what):
    raise ModelFileError(f"{path}: {what}")


def load(path) -> MLP:
    """Load a model saved by ``save``; ``model.sha256`` is the file's hash, ``model.metadata`` its JSON."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except OSError as e:
        raise ModelFileError(f"{path}: cannot read model file ({e.strerror or e})") from None
    return loads(blob, name=str(path))


def loads(blob: bytes, name: str = "<bytes>") -> MLP:
    """Like ``load`` but from the file's bytes (for registries and uploads)."""
    try:
        with _READ_LOCK, np.load(io.BytesIO(blob), allow_pickle=False) as z:
            files = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, zipfile.LargeZipFile) as e:
        _fail(name, f"not a readable .npz model file ({type(e).__name__}: {e})")
    except Exception as e:  # zlib.error and friends from a damaged archive member
        _fail(name, f"damaged .npz model file ({type(e).__name__}: {e})")
    if META_KEY not in files:
        _fail(name, "no mnistlite metadata (a foreign .npz file?)")
    try:
        meta = json.loads(files.pop(META_KEY).tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError) as e:
        _fail(name, f"metadata is not valid JSON ({e})")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        _fail(name, "metadata does not describe a mnistlite model (a foreign file?)")
    if meta.get("format_version") != FORMAT_VERSION:
        _fail(name, f"format version {meta.get('format_version')!r} is not supported (this is "
                    f"mnistlite {__version__}, format {FORMAT_VERSION}); upgrade mnistlite or re-train")
    sizes = meta.get("layer_sizes")
    if not (isinstance(sizes, list) and len(sizes) >= 2 and all(isinstance(s, int) and s > 0 for s in sizes)):
        _fail(name, f"bad layer_sizes {sizes!r} in metadata")
    expected = {}
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        expected[f"W{i}"], expected[f"b{i}"] = (n_in, n_out), (n_out,)
    if set(files) != set(expected):
        _fail(name, f"arrays {sorted(files)} do not match layer sizes {sizes} (expected {sorted(expected)})")
    for key, shape in expected.items():
        a = files[key]
        if a.shape != shape:
            _fail(name, f"array {key} has shape {a.shape}, expected {shape}")
        if a.dtype not in (np.float32, np.float16):
            _fail(name, f"array {key} has dtype {a.dtype}, expected float32 or float16")
        if not np.isfinite(a).all():
            _fail(name, f"array {key} holds NaN or infinite values")
    try:
        config = TrainConfig.from_dict(meta["config"]) if meta.get("config") else None
        model = MLP(sizes, activation=meta.get("activation", "relu"), seed=0, config=config, init="zeros")
    except (TypeError, ValueError) as e:
        _fail(name, f"metadata does not describe a valid model ({e})")
    for i, d in enumerate(model.dense):
        d.W[...] = files[f"W{i}"]
        d.b[...] = files[f"b{i}"]
    model.metadata = meta
    model.sha256 = hashlib.sha256(blob).hexdigest()
    return model


def file_sha256(path) -> str:
    """SHA-256 hex digest of a file's bytes (the model's content address)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
