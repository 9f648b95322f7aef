"""An epoch's training batches, optionally made one step ahead on a background thread.

Building a batch (the row gather, then the batch hook's augmentation and extra rows) runs on one core,
while the step before it runs matrix products that numpy hands to BLAS without the GIL. ``Prefetch``
overlaps the two. The background thread is then the only user of the generator during the epoch, and it
draws exactly what the plain loop would, in the same order: the weights come out bit-identical.
"""
from __future__ import annotations

import queue
import threading

import numpy as np

from .rng import as_generator


def minibatches(x, y, batch_size: int, rng):
    """One shuffled epoch of (xb, yb) batches: a seeded permutation of the rows cut into ``batch_size``
    slices (the last may be shorter). ``rng`` is a seed or numpy Generator; it draws once per epoch."""
    order = as_generator(rng).permutation(len(x))
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        yield x.take(idx, axis=0), y.take(idx)


def hooked(batches, hook, rng):
    """``batches`` with ``hook(xb, yb, rng) -> (xb, yb)`` applied to each (none: unchanged)."""
    if hook is None:
        yield from batches
        return
    for xb, yb in batches:
        yield hook(xb, yb, rng)


class Prefetch:
    """Iterate over ``batches`` (an iterator) while a background thread computes up to ``depth`` items
    ahead. Errors raised while making a batch are raised here, where it would have been used; ``close``
    (also on leaving a ``with`` block) stops the thread. The thread runs under this thread's numpy error
    settings, so floating-point warnings behave as in the plain loop."""

    def __init__(self, batches, depth: int = 2):
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth!r}")
        self._queue: queue.Queue = queue.Queue(depth)
        self._stop = threading.Event()
        self._ended = False
        self._thread = threading.Thread(target=self._produce, args=(batches, np.geterr()),
                                        name="mnistlite-prefetch", daemon=True)
        self._thread.start()

    def _produce(self, batches, errors: dict):
        try:
            with np.errstate(**errors):
                for item in batches:
                    if not self._put((True, item)):
                        return
        except BaseException as exc:  # handed to the consumer, which raises it where the batch was due
            self._put((False, exc))
            return
        self._put((False, None))

    def _put(self, item) -> bool:
        """Queue ``item`` unless closed meanwhile: False when the consumer has gone."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self):
        return self

    def __next__(self):
        if self._ended:
            raise StopIteration
        ok, item = self._queue.get()
        if ok:
            return item
        self._ended = True
        self._thread.join()
        if item is None:
            raise StopIteration
        raise item

    def close(self):
        self._stop.set()
        self._thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def epoch_batches(x, y, batch_size: int, rng, hook=None, *, background: bool = False):
    """One epoch's hooked batches (``minibatches`` then ``hooked``), made on a background thread when
    ``background``. Use it in a ``with`` block so an early exit stops that thread. Background making
    is only safe when nothing else draws from ``rng`` until the epoch's last batch has been taken."""
    batches = hooked(minibatches(x, y, batch_size, rng), hook, rng)
    return Prefetch(batches) if background else _Plain(batches)


class _Plain:
    """The plain loop's batches behind the same ``with`` interface as ``Prefetch``."""

    def __init__(self, batches):
        self._batches = batches

    def __iter__(self):
        return iter(self._batches)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._batches.close()
