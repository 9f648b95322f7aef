"""A fit's batches made in a forked child process while the parent steps: the same batches, byte for byte.

``MLP.fit`` asks a batch source for each epoch's finished batches (shuffled, then through the batch hook).
``InProcessBatches`` makes them in the fitting process, between steps. ``ProcessBatches`` forks a
producer that owns a copy of the model's generator and makes every draw in the same order (the epoch's
permutation, then each batch's hook draws), a few batches ahead, into a ring of slots in memory shared
with the parent; the parent only runs the products and the optimizer, so a second core spends the hook's
single-threaded numpy (augmentation, outlier rows) while the first runs the steps. No GIL is shared.

The parent's generator is set to the producer's state at each epoch's end, so it ends where an in-process
fit leaves it. The producer cannot follow draws the parent makes during a step (dropout): ``why_not``
says when it does not apply. Every wait has a timeout; a producer that dies or stalls raises
``ProducerError``.
"""
from __future__ import annotations

import mmap
import os
import signal
import time
import traceback
from multiprocessing.connection import Pipe

import numpy as np

from .steps import InProcessBatches, epoch_batches

SLOTS = 4            # batches the producer may run ahead
NICE = 5             # the producer yields to the fit's BLAS threads: one it preempts stalls the other
TIMEOUT = 120.0      # seconds the parent waits for one batch before it gives up on the producer


class ProducerError(RuntimeError):
    """The batch producer process died, stalled or failed: the fit cannot go on with its batches."""


NO_HOOK = "no batch hook"


def why_not(dropout: float, cpus: float, hooked: bool = True, threads: int = 2) -> str | None:
    """None when a producer process can make a fit's batches, has a core to run on and work worth moving
    (a batch hook: without one a batch is a gather, cheaper than handing it over); else why not. A fit on
    one BLAS ``threads`` gets none: a producer would make it two busy processes where one was asked for."""
    if not hooked:
        return NO_HOOK
    if not hasattr(os, "fork"):
        return "no fork on this platform"
    if dropout:
        return "dropout draws from the model's generator during each step"
    if cpus < 2:
        return f"{cpus:g} usable CPU"
    if threads < 2:
        return "one BLAS thread"
    return None


class ProducerOrInProcess:
    """A batch source for ``MLP.fit``: a ``ProcessBatches``, or ``InProcessBatches`` (the same batches) when
    the fit has no batch hook or the fork or its shared memory fails; ``kind`` and ``why`` say which it made
    and why."""

    def __init__(self):
        self.kind, self.why = None, None

    def __call__(self, *args):
        try:
            if args[4] is None:   # (x, y, batch_size, rng, hook, epochs)
                source, self.why = InProcessBatches(*args), NO_HOOK
            else:
                source = ProcessBatches(*args)
        except OSError as e:
            source, self.why = InProcessBatches(*args), f"fork failed: {e}"
        self.kind = source.kind
        return source


class ProcessBatches:
    """Batches made by a forked producer process into shared memory; see the module's doc.

    ``x, y, batch_size, rng, hook, epochs`` as ``MLP.fit`` has them; ``rows`` bounds a finished batch's
    rows (the hook may add some; twice ``batch_size`` by default).
    """

    kind = "process"

    def __init__(self, x, y, batch_size, rng, hook, epochs, *, rows: int | None = None,
                 slots: int = SLOTS, timeout: float = TIMEOUT):
        self.rng, self.timeout = rng, timeout
        self.rows, self.cols = rows or 2 * batch_size, x.shape[1]
        self.x_bytes = self.rows * self.cols * 4
        self.slot_bytes = -(-(self.x_bytes + self.rows * 8) // 4096) * 4096
        self.shm = mmap.mmap(-1, self.slot_bytes * slots)   # anonymous, MAP_SHARED: the child sees it
        self.slots = [self._views(i) for i in range(slots)]
        self.pid = None
        ready_r, ready_w = Pipe(duplex=False)
        free_r, free_w = Pipe(duplex=False)
        pid = os.fork()
        if pid == 0:   # the producer: never returns into the caller's code
            code = 1
            try:
                signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C stops the parent, which closes us
                os.nice(NICE)
                ready_r.close()
                free_w.close()
                code = self._produce(x, y, batch_size, rng, hook, epochs, ready_w, free_r, slots)
            except BaseException:
                pass
            finally:
                os._exit(code)
        self.pid = pid
        ready_w.close()
        free_r.close()
        self.ready, self.free = ready_r, free_w
        self.held = None   # the slot the parent's current batch lives in

    def _views(self, i):
        at = i * self.slot_bytes
        xs = np.frombuffer(self.shm, np.float32, self.rows * self.cols, at).reshape(self.rows, self.cols)
        ys = np.frombuffer(self.shm, np.int64, self.rows, at + self.x_bytes)
        return xs, ys

    def _produce(self, x, y, batch_size, rng, hook, epochs, ready, free, slots):
        try:
            spare = list(range(slots))
            for _ in range(epochs):
                for xb, yb in epoch_batches(x, y, batch_size, rng, hook):
                    if xb.dtype != np.float32 or len(xb) > self.rows or xb.shape[1:] != (self.cols,):
                        raise ValueError(f"the batch hook made a {xb.dtype} {xb.shape} batch; the producer "
                                         f"holds float32 (<= {self.rows}, {self.cols})")
                    if not spare:
                        spare.append(free.recv())   # blocks until the parent is done with a batch
                    slot = spare.pop(0)
                    xs, ys = self.slots[slot]
                    xs[:len(xb)] = xb
                    ys[:len(yb)] = yb
                    ready.send((slot, len(xb), yb.dtype.str))
                ready.send(("end", rng.bit_generator.state))
            return 0
        except (EOFError, BrokenPipeError, ConnectionResetError):
            return 0   # the parent closed (early stop, or it died): nothing left to make
        except BaseException:
            try:
                ready.send(("error", traceback.format_exc()))
            except OSError:
                pass
            return 1

    def _recv(self):
        """The producer's next message; ProducerError if it dies first or sends none for ``timeout`` s."""
        pid, deadline = self.pid, time.monotonic() + self.timeout
        while not self.ready.poll(max(0.0, min(1.0, deadline - time.monotonic()))):
            status = self._reap(block=False)
            if status is not None:
                raise ProducerError(f"the batch producer (pid {pid}) died mid-fit: {status}")
            if time.monotonic() >= deadline:
                self.close()
                raise ProducerError(f"the batch producer (pid {pid}) made no batch in {self.timeout:g} s; "
                                    "stopped it")
        try:
            return self.ready.recv()
        except (EOFError, OSError):
            status = self._reap(block=True)
            raise ProducerError(f"the batch producer (pid {pid}) died mid-fit: {status}") from None

    def epoch(self):
        """This epoch's batches, each (xb, yb) valid until the next is asked for."""
        while True:
            if self.held is not None:   # the caller is done with the last batch: its slot is free again
                try:
                    self.free.send(self.held)
                except OSError:
                    pass   # the producer is gone: _recv says how
                self.held = None
            msg = self._recv()
            if msg[0] == "end":
                self.rng.bit_generator.state = msg[1]
                return
            if msg[0] == "error":
                self.close()
                raise ProducerError(f"the batch producer failed:\n{msg[1]}")
            slot, n, ydtype = msg
            self.held = slot
            xs, ys = self.slots[slot]
            yield xs[:n], ys[:n].astype(ydtype, copy=False)

    def _reap(self, block: bool):
        """The producer's exit as text once it has exited (reaping it), else None."""
        if self.pid is None:
            return "already reaped"
        try:
            pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            pid, status = self.pid, 0
        if pid == 0:
            return None
        self.pid = None
        if os.WIFSIGNALED(status):
            return f"killed by signal {os.WTERMSIG(status)}"
        return f"exit status {os.waitstatus_to_exitcode(status)}"

    def close(self):
        """Stop the producer (if it still runs) and reap it; the fit's end, early stop, or an error."""
        for conn in (self.ready, self.free):
            conn.close()
        if self.pid is not None:
            deadline = time.monotonic() + 5.0
            while self._reap(block=False) is None:
                if time.monotonic() > deadline:
                    os.kill(self.pid, signal.SIGKILL)
                    self._reap(block=True)
                    break
                time.sleep(0.01)
