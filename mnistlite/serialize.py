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
from .nn.calibration import Calibration
from .nn.config import TrainConfig
from .nn.model import MLP

FORMAT = "mnistlite.mlp"
FORMAT_VERSION = 2      # 2: "calibration" (temperature and reject thresholds, or null)
READABLE_VERSIONS = (1, 2)  # version 1 files load without a calibration: answered as before, never abstaining
META_KEY = "__meta__"


class ModelFileError(ValueError):
    """A model file is missing, corrupt, truncated, foreign or from an unknown format version."""


def save(model: MLP, path, metadata: dict | None = None, *, float16: bool = False,
         created: str | None = None) -> Path:
    """Write ``model`` to ``path`` atomically; ``metadata`` (JSON-able) is stored under "user".

    float16 halves the file; weights are widened back to float32 on load. ``created`` (ISO 8601) is the
    time recorded in the file: give one (the source's commit time, as ``make candidate`` does through
    SOURCE_DATE_EPOCH) and equal models give equal bytes; by default a loaded model keeps its own, and
    a new one gets the current time.
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
        "created": created or model.metadata.get("created") or utc_now(),
        **{k: v for k, v in model.metadata.items() if k not in ("user", "created")},
    }
    meta["format_version"] = FORMAT_VERSION
    meta["calibration"] = model.calibration.to_dict() if model.calibration is not None else None
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


# Limits checked from the zip's directory before a member is read: the metadata is a few KB of JSON, and an
# array's .npy member is its header (numpy pads it to a multiple of 64 bytes) plus its float32 data.
META_MAX_BYTES = 1 << 20
NPY_HEADER_MAX_BYTES = 4096
META_MAX_DEPTH = 32  # nesting of the metadata JSON (the real one is 4 deep)
MAX_PARAMETERS = 50_000_000  # 200 MB of float32: far past any MNIST MLP, short of a decompression bomb
_ARRAY_DTYPES = (np.dtype("<f4"), np.dtype("<f2"), np.dtype(">f4"), np.dtype(">f2"))


def _open_zip(blob: bytes, name: str) -> tuple[zipfile.ZipFile, dict]:
    """The archive and its members by array name ("W0" for "W0.npy"), from the central directory only."""
    try:
        z = zipfile.ZipFile(io.BytesIO(blob))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as e:
        _fail(name, f"not a readable .npz model file ({type(e).__name__}: {e})")
    members = {}
    for info in z.infolist():
        key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        if key in members:
            _fail(name, f"member {info.filename!r} appears twice")
        members[key] = info
    return z, members


def _read_npy(z: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, key: str, shape=None) -> np.ndarray:
    """One .npy member: its header checked (shape, float dtype) before its data is read; never pickle."""
    try:
        with _READ_LOCK, z.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version not in ((1, 0), (2, 0)):
                _fail(name, f"array {key} has .npy format version {version}, expected 1.0 or 2.0")
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) \
                else np.lib.format.read_array_header_2_0
            got, fortran, dtype = read_header(f, max_header_size=NPY_HEADER_MAX_BYTES)
            if shape is not None and got != shape:
                _fail(name, f"array {key} has shape {got}, expected {shape}")
            if shape is not None and dtype not in _ARRAY_DTYPES:
                _fail(name, f"array {key} has dtype {dtype}, expected float32 or float16")
            if shape is None and (dtype != np.uint8 or len(got) != 1):
                _fail(name, f"metadata entry has dtype {dtype} and shape {got}, expected uint8 bytes")
            count = int(np.prod(got))
            data = f.read(count * dtype.itemsize)
    except ModelFileError:
        raise
    except Exception as e:  # noqa: BLE001 - BadZipFile (CRC), zlib.error, EOFError, ValueError: damaged
        _fail(name, f"damaged .npz model file ({type(e).__name__}: {e})")
    if len(data) != count * dtype.itemsize:
        _fail(name, f"array {key} is truncated")
    a = np.frombuffer(data, dtype=dtype)
    return a.reshape(got, order="F" if fortran else "C")


def _too_deep(obj, limit: int) -> bool:
    """True if the JSON value nests lists/dicts more than ``limit`` deep (iterative: no recursion)."""
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return False


def _read_meta(z: zipfile.ZipFile, members: dict, name: str) -> dict:
    info = members.get(META_KEY)
    if info is None:
        _fail(name, "no mnistlite metadata (a foreign .npz file?)")
    if info.file_size > META_MAX_BYTES:
        _fail(name, f"metadata entry declares {info.file_size} bytes; the limit is {META_MAX_BYTES}")
    raw = _read_npy(z, info, name, META_KEY)
    try:
        meta = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        _fail(name, f"metadata is not valid JSON ({e})")
    except RecursionError:
        meta = None
    if meta is None or _too_deep(meta, META_MAX_DEPTH):
        _fail(name, f"metadata nests deeper than {META_MAX_DEPTH} levels (not a mnistlite model)")
    return meta


def loads(blob: bytes, name: str = "<bytes>") -> MLP:
    """Like ``load`` but from the file's bytes (for registries and uploads).

    The zip's directory is checked first: only the metadata and the arrays its layer sizes call for,
    each no larger than its shape needs, before any array member is read.
    """
    z, members = _open_zip(blob, name)
    with z:
        meta = _read_meta(z, members, name)
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            _fail(name, "metadata does not describe a mnistlite model (a foreign file?)")
        if meta.get("format_version") not in READABLE_VERSIONS:
            _fail(name, f"format version {meta.get('format_version')!r} is not supported (this is "
                        f"mnistlite {__version__}, formats {list(READABLE_VERSIONS)}); upgrade mnistlite "
                        "or re-train")
        sizes = meta.get("layer_sizes")
        if not (isinstance(sizes, list) and len(sizes) >= 2
                and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sizes)):
            _fail(name, f"bad layer_sizes {sizes!r} in metadata")
        expected = {}
        for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            expected[f"W{i}"], expected[f"b{i}"] = (n_in, n_out), (n_out,)
        n_params = sum(int(np.prod(shape, dtype=np.int64)) for shape in expected.values())
        if n_params > MAX_PARAMETERS:
            _fail(name, f"layer sizes {sizes} hold {n_params} parameters; the limit is {MAX_PARAMETERS}")
        arrays = sorted(set(members) - {META_KEY})
        if set(arrays) != set(expected):
            _fail(name, f"arrays {arrays} do not match layer sizes {sizes} (expected {sorted(expected)})")
        for key, shape in expected.items():  # declared sizes, before anything is read
            most = NPY_HEADER_MAX_BYTES + 4 * int(np.prod(shape))
            if members[key].file_size > most:
                _fail(name, f"array {key} declares {members[key].file_size} bytes; shape {shape} "
                            f"needs at most {most}")
        files = {key: _read_npy(z, members[key], name, key, shape) for key, shape in expected.items()}
    for key, a in files.items():
        if not np.isfinite(a).all():
            _fail(name, f"array {key} holds NaN or infinite values")
    try:
        config = TrainConfig.from_dict(meta["config"]) if meta.get("config") else None
        model = MLP(sizes, activation=meta.get("activation", "relu"), seed=0, config=config, init="zeros")
        calibration = meta.get("calibration") if meta["format_version"] >= 2 else None
        model.calibration = Calibration.from_dict(calibration) if calibration else None
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
