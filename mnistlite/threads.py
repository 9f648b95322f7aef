"""How many BLAS threads a fit should use: a run-time policy, kept out of the numerics (``nn/``)."""
from __future__ import annotations

import os
import time


def idle_cores(interval: float = 0.1) -> float:
    """How many cores sat idle over the next ``interval`` seconds, from /proc/stat; where that file is
    missing (not Linux), the core count minus the one-minute load average."""
    cores = os.cpu_count() or 1

    def sample():
        with open("/proc/stat") as f:
            ticks = [int(t) for t in f.readline().split()[1:]]
        return ticks[3] + ticks[4], sum(ticks)   # idle + iowait, all

    try:
        idle0, all0 = sample()
        time.sleep(interval)
        idle1, all1 = sample()
    except (OSError, ValueError, IndexError):
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        return max(0.0, cores - load)
    return cores * (idle1 - idle0) / max(all1 - all0, 1)


def blas_threads(idle: float | None = None) -> int:
    """BLAS threads for a fit: one per idle core (``idle_cores()`` by default), at least 1, at most 4.

    OpenBLAS threads wait for each other by spinning, so a thread that shares its core with other
    work stalls every product; a core counts as idle when it was at least 75% idle.
    """
    if idle is None:
        idle = idle_cores()
    return max(1, min(int(idle + 0.25), 4))
