"""IDX files (the MNIST container format): read and write, gzip or raw, with strict checks.

Layout: 2 zero bytes, a type byte (0x08 = uint8), a dimension count, then one big-endian uint32
per dimension, then the data. Anything else raises ``IDXError`` naming the file and the fault.
"""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from ..files import atomic_write_bytes

# IDX type byte -> numpy big-endian dtype
_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
          0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_CODES = {dt.newbyteorder("="): code for code, dt in _TYPES.items()}




class IDXError(ValueError):
    """A file is not a valid IDX file; the message names the file and what is wrong."""


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise IDXError(f"{path}: cannot read ({e.strerror or e})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise IDXError(f"{path}: corrupt or truncated gzip data ({e}); re-download the file") from None
    return raw


def read_idx(path) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw) into a native-endian array of its own dtype and shape."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise IDXError(f"{path}: too short to be an IDX file ({len(data)} bytes)")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or code not in _TYPES:
        raise IDXError(f"{path}: bad magic number 0x{data[:4].hex()} (not an IDX file)")
    if ndim == 0:
        raise IDXError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXError(f"{path}: truncated header (needs {header} bytes, has {len(data)})")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _TYPES[code]
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise IDXError(f"{path}: {what}: dims {list(dims)} need {expected} bytes, file has {len(data)}")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))


def write_idx(path, array, *, compress: bool | None = None) -> Path:
    """Write ``array`` as IDX atomically; gzip when ``compress`` or when the name ends in ``.gz``."""
    path = Path(path)
    a = np.asarray(array)
    if a.ndim == 0 or a.ndim > 255:
        raise ValueError(f"IDX needs an array of 1..255 dimensions, got shape {a.shape}")
    code = _CODES.get(a.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"IDX cannot store dtype {a.dtype}; "
                         f"use one of uint8 int8 int16 int32 float32 float64")
    payload = struct.pack(f">HBB{a.ndim}I", 0, code, a.ndim, *a.shape) + a.astype(_TYPES[code]).tobytes()
    if compress or (compress is None and path.suffix == ".gz"):
        payload = gzip.compress(payload, mtime=0)
    atomic_write_bytes(path, payload)
    return path
