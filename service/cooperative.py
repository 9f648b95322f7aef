"""Let a gevent worker's other connections run while one request preprocesses a costly image.

A gevent worker runs its requests cooperatively: a CPU-bound request keeps the worker until it does I/O,
so a /liveness probe or a small upload arriving meanwhile waits for all of it. ``Pauses`` is handed to
``preprocess_image``, which calls it between its stages (after decoding, after the full-size checks,
after cleaning). Once the request has run QUANTUM seconds since it started or last paused (wall clock: a
busy machine counts), the call waits until the event loop is idle: every connection that is ready (a
probe, a normal client, the other uploads' next stage) runs first. A request that has used less than
MIN_CPU seconds of CPU meanwhile (a small upload, held up only because the machine took its core away)
does not pause: under a steady load the loop is never idle, and the pause held it until the load dropped.
Outside a greenlet that gevent's hub runs (falcon.testing, a sync worker, training) a call does nothing.
"""
from __future__ import annotations

import sys
import time

QUANTUM = 0.004   # seconds a request runs before it lets the others in (wall clock: a busy machine counts)
MIN_CPU = 0.001   # seconds of CPU a request uses before it may pause: more than a small upload's whole cost


class Pauses:
    """A callable for ``preprocess_image(..., pause=...)``, one per request; ``count`` says how often it let
    the others run."""

    def __init__(self, quantum: float | None = None, clock=time.monotonic, cpu=time.thread_time):
        quantum = QUANTUM if quantum is None else quantum
        if quantum < 0:
            raise ValueError(f"quantum must be >= 0 seconds, got {quantum!r}")
        self.quantum, self.clock, self.cpu, self.count = quantum, clock, cpu, 0
        self.mark, self.cpu_mark = clock(), cpu()

    def __call__(self) -> None:
        # The wall clock first: it needs no system call, and a request runs that long only rarely.
        if self.clock() - self.mark < self.quantum or self.cpu() - self.cpu_mark < min(MIN_CPU, self.quantum):
            return
        gevent = sys.modules.get("gevent")   # never imported here: only a gevent worker has it loaded
        if gevent is None or gevent.getcurrent().parent is None:   # not a greenlet the hub runs
            return
        # idle(), not sleep(0): sleep(0) may come back before the loop has polled for I/O.
        gevent.idle()
        self.count += 1
        self.mark, self.cpu_mark = self.clock(), self.cpu()
