"""Make the next training batch on a worker thread while the current one trains.

The batch hook (augmentation, outlier rows) is numpy work that otherwise runs between the products with
the second core idle; numpy releases the GIL in its loops and BLAS in its products, so the two overlap.
The worker is the only user of the generator while it runs (the hook's draws and the epoch's shuffle),
and it makes the batches in order, so the weights are bit-identical to a fit without it.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor


def hooked(batches, hook, rng):
    """(xb, yb) of ``batches`` passed through ``hook(xb, yb, rng)``, lazily, in order."""
    for xb, yb in batches:
        yield hook(xb, yb, rng)


def prefetched(batches):
    """Yield the items of ``batches`` while one worker thread makes the next. Closing the generator
    (a step that raised) waits for the batch in the making, then stops."""
    it = iter(batches)
    with ThreadPoolExecutor(1, thread_name_prefix="mnistlite-batches") as pool:
        ahead = pool.submit(next, it, None)
        while True:
            item = ahead.result()
            if item is None:
                return
            ahead = pool.submit(next, it, None)
            yield item
