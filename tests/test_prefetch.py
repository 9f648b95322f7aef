"""Batches made on a background thread (nn/prefetch.py): the same draws, the same weights, errors raised
where the batch was due, and no thread left behind."""
import threading

import numpy as np
import pytest

import mnistlite as ml
from mnistlite.images.augment import training_hook
from mnistlite.images.nondigits import outlier_hook
from mnistlite.nn.prefetch import Prefetch, epoch_batches


def digits(n=640, seed=0):
    """float32 (n, 784) strokes with a blank margin (so the distortions apply), int64 labels 0..3."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    img = np.zeros((n, 28, 28), np.float32)
    for k in range(4):
        img[y == k, 4 + 5 * k:8 + 5 * k, 6:22] = 1.0   # a bar whose height says the class
    img[:, 4:24, 4:24] += rng.random((n, 20, 20), dtype=np.float32) * 0.3
    return np.clip(img, 0, 1).reshape(n, 784), y


def fit_once(prefetch: bool, dropout: float = 0.0, epochs: int = 3):
    """A fit with the recipe's hooks (distortions, shifts, non-digit rows); returns (weights, history)."""
    x, y = digits()
    model = ml.MLP([784, 32, 16, 4], seed=7, dropout=dropout)
    pool = np.random.default_rng(3).random((50, 784), dtype=np.float32)
    hook = outlier_hook(0.2, pool, training_hook(0.5, 1, model.rng))
    history = model.fit(x, y, epochs=epochs, batch_size=64, optimizer=ml.Adam(2e-3), schedule="cosine",
                        label_smoothing=0.1, batch_hook=hook, prefetch=prefetch)
    return model.flat_params.copy(), history


def test_prefetched_batches_give_the_plain_loops_weights_bit_for_bit():
    on, h_on = fit_once(prefetch=True)
    off, h_off = fit_once(prefetch=False)
    assert on.tobytes() == off.tobytes()
    assert h_on["loss"] == h_off["loss"] and h_on["acc"] == h_off["acc"]


def test_dropout_draws_during_the_step_keep_the_plain_order():
    """Dropout draws from the model's generator between batches, so prefetching must stand aside."""
    on, _ = fit_once(prefetch=True, dropout=0.2, epochs=2)
    off, _ = fit_once(prefetch=False, dropout=0.2, epochs=2)
    assert on.tobytes() == off.tobytes()


def test_batches_come_in_order_and_match_the_plain_epoch():
    x, y = digits(300)
    hook = training_hook(0.5, 2, np.random.default_rng(1))
    plain = list(epoch_batches(x, y, 32, np.random.default_rng(5), hook))
    with epoch_batches(x, y, 32, np.random.default_rng(5), hook, background=True) as batches:
        ahead = list(batches)
    assert len(ahead) == len(plain) == 10
    assert list(batches) == []   # an ended epoch stays ended
    for (xa, ya), (xp, yp) in zip(ahead, plain, strict=True):
        assert xa.tobytes() == xp.tobytes() and ya.tobytes() == yp.tobytes()


def test_an_error_in_the_hook_is_raised_by_fit_and_the_thread_ends():
    x, y = digits(300)
    seen = []

    def broken(xb, yb, rng):
        seen.append(len(yb))
        if len(seen) == 3:
            raise ValueError("bad batch 3")
        return xb, yb

    before = threading.active_count()
    with pytest.raises(ValueError, match="bad batch 3"):
        ml.MLP([784, 8, 4], seed=0).fit(x, y, epochs=2, batch_size=32, batch_hook=broken)
    assert len(seen) == 3   # nothing is made after the failing batch
    assert threading.active_count() == before


def test_leaving_an_epoch_early_stops_the_thread():
    made = []

    def endless():
        i = 0
        while True:
            made.append(i)
            yield i
            i += 1

    before = threading.active_count()
    with Prefetch(endless(), depth=2) as batches:
        assert [next(batches) for _ in range(3)] == [0, 1, 2]
    assert threading.active_count() == before
    assert len(made) <= 3 + 2 + 1   # taken, queued, and the one waiting for room


def test_the_background_thread_keeps_the_callers_float_error_settings():
    def overflow(xb, yb, rng):
        np.float32(3e38) * np.float32(10)   # raises under errstate(over="raise")
        return xb, yb

    x, y = digits(64)
    with np.errstate(over="raise"):
        with pytest.raises(FloatingPointError), Prefetch(iter([(x, y)])) as batches:
            for xb, yb in batches:
                overflow(xb, yb, None)
        with pytest.raises(FloatingPointError), \
                epoch_batches(x, y, 32, 0, overflow, background=True) as batches:
            list(batches)


def test_depth_must_be_positive():
    with pytest.raises(ValueError, match="depth must be >= 1, got 0"):
        Prefetch(iter([]), depth=0)


def test_the_training_script_bounds_openblas_spinning_before_numpy_loads(tmp_path):
    """scripts/train.py sets OPENBLAS_THREAD_TIMEOUT before anything imports numpy; a value set wins."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "train.py"
    probe = ("import runpy, sys, os; g = runpy.run_path(sys.argv[1], run_name='probe'); "
             "print(os.environ['OPENBLAS_THREAD_TIMEOUT'])")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    out = subprocess.run([sys.executable, "-c", probe, str(script)], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["20"]
    out = subprocess.run([sys.executable, "-c", probe, str(script)],
                         env={**env, "OPENBLAS_THREAD_TIMEOUT": "28"}, capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["28"]
    source = script.read_text()
    assert source.index("OPENBLAS_THREAD_TIMEOUT") < source.index("from mnistlite")
