"""Even shares of the connections among the workers: who accepts a new connection, and when a kept-alive
connection's answer should close it.

A kept-alive connection stays with the worker that accepted it, and the kernel hands a new connection to
whichever worker calls accept() first: 16 connections opened at once split anywhere from 8/8 to 15/1, and
stay so, and the crowded worker's clients wait while the other idles. So every worker publishes how many
connections it holds on a ``Board`` (memory the gunicorn master shares with the workers it forks):
- a worker holding more than the least loaded other leaves new connections to it (``AcceptGate``), for at
  most ``MAX_DEFER`` seconds, so that a busy or stuck other worker cannot keep a client waiting;
- a worker holding more than one connection above another answers "Connection: close" (``should_close``);
  the client reconnects and the gate sends it to the other. At even shares nothing closes.
``every`` (MNISTLITE_KEEPALIVE_REQUESTS) also bounds the requests of one connection.
"""
from __future__ import annotations

import mmap
import time

SLOTS = 256  # workers alive at once, old generations during a reload included
RECHECK = 0.002   # seconds a worker above its share stops watching the listener before it looks again
MAX_DEFER = 0.01  # seconds a pending connection is left to the other workers at most


class Board:
    """Per worker slot: its pid and the connections it holds. Made in the master before forking; the master
    claims and releases slots, each worker writes only its own; int64 reads and writes do not tear."""

    def __init__(self, slots: int = SLOTS):
        self._map = mmap.mmap(-1, 8 * (1 + 2 * slots))  # anonymous and shared: forked workers see one another
        # cell 0: how many slots were ever claimed (the others need no look); then per slot: pid, connections
        self._cells = memoryview(self._map).cast("q")  # native int64
        self.slots = slots

    def claim(self, taken) -> int:
        """(master) A slot not in ``taken``, cleared; ValueError when all are taken."""
        for i in range(self.slots):
            if i not in taken:
                self._cells[1 + 2 * i] = self._cells[2 + 2 * i] = 0
                self._cells[0] = max(self._cells[0], i + 1)
                return i
        raise ValueError(f"more than {self.slots} workers at once")

    def release(self, slot: int) -> None:
        """(master) The worker in ``slot`` has exited: it holds nothing."""
        self._cells[1 + 2 * slot] = self._cells[2 + 2 * slot] = 0

    def enter(self, slot: int, pid: int) -> None:
        """(worker) Take ``slot`` as process ``pid``."""
        self._cells[1 + 2 * slot], self._cells[2 + 2 * slot] = pid, 0

    def add(self, slot: int, n: int) -> None:
        """(worker) Its connections went up (or down) by ``n``."""
        self._cells[2 + 2 * slot] += n

    def held(self, slot: int) -> int:
        return self._cells[2 + 2 * slot]

    def least_other(self, slot: int) -> int | None:
        """The fewest connections any other worker holds, or None when there is no other."""
        c = self._cells
        used = c[0]
        pids, held = c[1:1 + 2 * used:2].tolist(), c[2:2 + 2 * used:2].tolist()
        loads = [n for i, (pid, n) in enumerate(zip(pids, held, strict=True)) if pid and i != slot]
        return min(loads) if loads else None


def request_limit(every: int, peer) -> int:
    """The request whose answer closes a connection from ``peer`` (address tuple): ``every``, less up to a
    quarter of it chosen by the client's port, so that connections opened together do not all close
    (and wait to be accepted again) together."""
    port = peer[1] if isinstance(peer, tuple) and len(peer) > 1 else 0
    return every - port % (every // 4 + 1)


def should_close(req, board: Board | None, slot: int | None, *, every: int) -> bool:
    """True when this request's answer should close its connection: its worker (``slot`` on ``board``)
    holds more than one connection above another worker, or the connection has had its
    ``request_limit`` of requests (``every`` 0: no limit)."""
    if every and req.req_number >= request_limit(every, getattr(req, "peer_addr", None)):
        return True
    if board is None or slot is None:
        return False
    least = board.least_other(slot)
    return least is not None and board.held(slot) > least + 1


class AcceptGate:
    """Whether worker ``slot`` accepts a pending connection now: when it holds no more than the least loaded
    other worker, or when it has left pending connections to the others for ``MAX_DEFER`` seconds."""

    def __init__(self, board: Board, slot: int, clock=time.monotonic):
        self.board, self.slot, self.clock = board, slot, clock
        self._since = self._last = None  # this episode of deferring: first and latest refusal

    def open(self) -> bool:
        least = self.board.least_other(self.slot)
        if least is None or self.board.held(self.slot) <= least:
            self._since = None
            return True
        now = self.clock()
        if self._since is None or now - self._last > 3 * RECHECK:  # refusals RECHECK apart: one episode
            self._since = now
        self._last = now
        if now - self._since >= MAX_DEFER:
            self._since = None
            return True
        return False
