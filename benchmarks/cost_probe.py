"""CPU time and extra peak memory of one call, run in a forked child (the abuse suite's measure)."""
from __future__ import annotations

import ctypes
import os
import resource


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def probe(fn, data: bytes) -> tuple[float, float, str]:
    """(CPU seconds, extra peak RSS in MB, outcome) of ``fn(data)`` run once in a forked child.

    The child resets its peak RSS (/proc/self/clear_refs) first, so the figure is what this one call
    added; outcome is "ok" or the exception's type and message.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(r)
            # Memory the parent freed but kept would be reused without counting: give it back first.
            ctypes.CDLL("libc.so.6").malloc_trim(0)
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            base = _status_kb("VmRSS:")
            t0 = resource.getrusage(resource.RUSAGE_SELF)
            try:
                fn(data)
                outcome = "ok"
            except Exception as e:  # noqa: BLE001 - reported, not raised
                outcome = f"{type(e).__name__}: {e}"
            t1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu = (t1.ru_utime - t0.ru_utime) + (t1.ru_stime - t0.ru_stime)
            peak = (_status_kb("VmHWM:") - base) / 1024
            os.write(w, f"{cpu}\t{peak}\t{' '.join(outcome.split())[:300]}".encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        msg = f.read().decode()
    os.waitpid(pid, 0)
    if not msg:
        raise RuntimeError("the probe's child died without a report")
    cpu, peak, outcome = msg.split("\t", 2)
    return float(cpu), float(peak), outcome
