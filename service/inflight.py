"""A worker's budget of request-body bytes in flight: received and held, across all its connections.

Each body that counts (see ``connection.SMALL_BODY``) takes budget for every piece before reading it and
gives all of it back when its request ends, so however many clients send bodies of whatever size at
once, a worker holds at most ``capacity`` body bytes; the others wait (their bytes stay in the kernel
and TCP slows their senders) until budget frees up or their deadline passes. After a burst, ``trim``
hands the freed memory back to the operating system, so a worker returns to its baseline.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import time

import gevent
from gevent.event import Event

TRIM_DELAY = 2.0  # seconds after a burst ends before its memory is returned


class Budget:
    """``capacity`` bytes, taken and given back by the greenlets of one worker process."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"the in-flight budget must be >= 1 byte, got {capacity!r}")
        self.capacity, self.used, self.peak = capacity, 0, 0
        self._freed = Event()

    def take(self, n: int, deadline: float) -> bool:
        """Take ``n`` bytes, waiting until ``deadline`` (time.monotonic()) at most; False if not granted."""
        while self.used + n > self.capacity:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._freed.clear()  # greenlets: nothing runs between the check above and this wait
            self._freed.wait(remaining)
        self.used += n
        self.peak = max(self.peak, self.used)
        return True

    def give(self, n: int) -> None:
        """Give back ``n`` bytes taken earlier; wakes the bodies waiting for budget."""
        self.used -= n
        self._freed.set()
        if self.used == 0 and self.peak > self.capacity // 4:
            self.peak = 0
            # Later, once the finished requests' greenlets and connections are gone too.
            gevent.spawn_later(TRIM_DELAY, trim)


_libc = None


def _glibc():
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        lib = ctypes.CDLL(name) if name else None
        _libc = lib if lib is not None and hasattr(lib, "malloc_trim") else False
    return _libc


def trim() -> None:
    """Free what a burst left behind and return free heap memory to the OS (glibc's ``malloc_trim``).

    Connections cut off (408, 503) leave reference cycles (exceptions, their tracebacks and frames, the
    parsers and sockets these hold) that only a full collection frees, and the preloaded heap is frozen,
    so the worker's own full collections are rare: one is run first. Bodies arrive in many pieces that
    glibc serves from its heap; once freed they stay mapped (and count as the worker's RSS) until trimmed.
    Called only when a worker's bodies in flight drop from a large share of the budget to none, so its
    cost (a collection of the worker's own objects, a walk over the heap) is rare.
    """
    gc.collect()
    if _glibc():
        _libc.malloc_trim(0)
