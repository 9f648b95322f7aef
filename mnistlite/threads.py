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


# Environment variables that change which kernels OpenBLAS and numpy run, and so the bits of a fit.
KERNEL_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_VERBOSE", "NPY_DISABLE_CPU_FEATURES",
              "NPY_ENABLE_CPU_FEATURES")


def blas_facts(threads: int, environ=None) -> dict:
    """What decides a fit's BLAS results besides the data and the config: the thread count, the BLAS
    library, its version and kernel family (threadpoolctl), and any KERNEL_ENV variable that is set.

    Nothing per machine path or per run: two fits with equal facts on one machine give equal bits.
    """
    from threadpoolctl import threadpool_info

    environ = os.environ if environ is None else environ
    libs = [{k: lib.get(k) for k in ("internal_api", "version", "architecture", "threading_layer")}
            for lib in threadpool_info() if lib.get("user_api") == "blas"]
    return {"threads": int(threads), "libraries": sorted(libs, key=lambda d: str(d)),
            "environment": {k: environ[k] for k in KERNEL_ENV if environ.get(k)}}
