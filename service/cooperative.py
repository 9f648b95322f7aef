"""Let a gevent worker's other connections run while one request preprocesses a costly image.

A gevent worker runs its requests cooperatively: a CPU-bound request keeps the worker until it does I/O,
so a /liveness probe or a small upload arriving meanwhile waits for all of it. ``Pauses`` is handed to
``preprocess_image``, which calls it between its stages (after decoding, after the full-size checks,
after cleaning). Once the request has run QUANTUM seconds since it started or last paused, the call
lets the event loop turn once: it polls, and every connection that is ready then (a probe, a normal
client, the other uploads' next stage) runs first. A small upload runs that long only when the machine
takes its core away for a while. Outside a greenlet that gevent's hub runs (falcon.testing, a sync
worker, training) a call does nothing.
"""
from __future__ import annotations

import sys
import time

QUANTUM = 0.004   # seconds a request runs before it lets the others in (wall clock: a busy machine counts)
TURN = 1e-6   # a pause's sleep: a timer due at once, so the loop polls for I/O once and comes back


class Pauses:
    """A callable for ``preprocess_image(..., pause=...)``, one per request; ``count`` says how often it let
    the others run."""

    def __init__(self, quantum: float | None = None, clock=time.monotonic):
        quantum = QUANTUM if quantum is None else quantum
        if quantum < 0:
            raise ValueError(f"quantum must be >= 0 seconds, got {quantum!r}")
        self.quantum, self.clock, self.count = quantum, clock, 0
        self.mark = clock()

    def __call__(self) -> None:
        if self.clock() - self.mark < self.quantum:
            return
        gevent = sys.modules.get("gevent")   # never imported here: only a gevent worker has it loaded
        if gevent is None or gevent.getcurrent().parent is None:   # not a greenlet the hub runs
            return
        # One turn, as between kept-alive answers (service/worker.py): sleep(0) may come back before the
        # loop has polled for I/O, and idle() waits for a turn with nothing else pending, which never
        # comes while every connection is busy: a paused request then waited for the load to drop.
        gevent.sleep(TURN)
        self.count += 1
        self.mark = self.clock()
