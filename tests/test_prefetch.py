"""Making the next batch on a worker thread (``prefetch``) changes nothing a fit computes."""
from __future__ import annotations

import numpy as np
import pytest

import mnistlite as ml
from mnistlite.images.augment import training_hook
from mnistlite.images.nondigits import outlier_hook
from mnistlite.nn.prefetch import prefetched


def _fit(x, y, prefetch, dropout=0.0):
    model = ml.MLP([784, 32, 10], seed=3, dropout=dropout)
    pool = np.random.default_rng(1).random((50, 784), dtype=np.float32)
    hook = outlier_hook(0.15, pool, training_hook(0.5, 1, model.rng))
    history = model.fit(x, y, epochs=2, batch_size=64, batch_hook=hook, prefetch=prefetch)
    return model.flat_params.copy(), history["loss"]


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_prefetch_gives_the_same_weights(mnist, dropout):
    (x, y), _ = mnist
    serial, prefetch = _fit(x[:1500], y[:1500], False, dropout), _fit(x[:1500], y[:1500], True, dropout)
    assert np.array_equal(serial[0], prefetch[0]) and serial[1] == prefetch[1]


def test_prefetched_keeps_order_and_passes_errors_on():
    assert list(prefetched(iter(range(1, 6)))) == [1, 2, 3, 4, 5]

    def broken():
        yield 1
        raise ValueError("bad batch")

    it = prefetched(broken())
    assert next(it) == 1
    with pytest.raises(ValueError, match="bad batch"):
        next(it)


def test_the_hook_runs_on_the_worker_only_with_prefetch(mnist):
    import threading

    (x, y), _ = mnist
    seen = set()

    def hook(xb, yb, rng):
        seen.add(threading.current_thread().name.startswith("mnistlite-batches"))
        return xb, yb

    for prefetch in (False, True):
        seen.clear()
        ml.MLP([784, 10], seed=0).fit(x[:300], y[:300], epochs=1, batch_size=100, batch_hook=hook,
                                      prefetch=prefetch)
        assert seen == {prefetch}
