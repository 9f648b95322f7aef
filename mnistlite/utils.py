"""Small helpers every part of mnistlite shares: atomic writes, UTC timestamps, seeded generators,
percents."""
from __future__ import annotations

import datetime as _dt
import os
import tempfile
from pathlib import Path

import numpy as np

# The process umask, read once (os.umask can only be read by setting it).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write_bytes(path, payload: bytes) -> None:
    """Write bytes to a temp file beside ``path``, fsync, then rename over it: never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes 0600 files; give the result the usual umask-based mode (readable by a
        # non-root server when root wrote it, as in a container fetching its model)
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def utc_now() -> str:
    """The current UTC time as ISO 8601 to the second, e.g. ``2026-12-01T23:59:00+00:00``."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def as_generator(seed) -> np.random.Generator:
    """Return a ``numpy.random.Generator`` from an int seed, a Generator (returned as is) or None."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0):
        return np.random.default_rng(seed)
    raise ValueError(f"seed must be a non-negative int, a numpy Generator or None, got {seed!r}")


def percent(fraction: float) -> str:
    """A fraction as a percentage with two decimals: 0.99185 -> '99.19%' (rounded half to even)."""
    return f"{100 * fraction:.2f}%"
