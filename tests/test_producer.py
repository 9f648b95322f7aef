"""The batch producer process (nn/producer.py): the very same fit as in-process batches, and a producer
that dies, stalls or fails stops the fit with a clear error, never a hang."""
import dataclasses
import os
import time

import numpy as np
import pytest

import mnistlite as ml
from mnistlite import recipe, threads
from mnistlite.images.augment import training_hook
from mnistlite.nn import producer
from mnistlite.nn.producer import ProcessBatches, ProducerError, why_not

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the producer needs fork")

SMALL = dataclasses.replace(ml.DEFAULT, hidden=(32,), epochs=2, batch_size=64, seed=3)


@pytest.fixture(scope="module")
def digits(mnist_uint8):
    (x, y), _ = mnist_uint8
    return x[:3000], y[:3000]


def fit_file(digits, tmp_path, monkeypatch, producer: bool):
    monkeypatch.setattr(recipe, "usable_cpus", lambda: 2.0)   # a 1-CPU runner would skip the producer
    model, _, report = ml.fit_recipe(SMALL, *digits, threads=2, producer=producer)
    path = tmp_path / f"{producer}.npz"
    ml.save(model, path, created="2000-01-01T00:00:00+00:00")
    return path.read_bytes(), report, model


def test_the_producer_gives_the_same_model_file_byte_for_byte(digits, tmp_path, monkeypatch):
    with_bytes, with_report, with_model = fit_file(digits, tmp_path, monkeypatch, True)
    without_bytes, without_report, without_model = fit_file(digits, tmp_path, monkeypatch, False)
    assert with_report["batch_producer"] == "process"
    assert without_report["batch_producer"] == "in-process (off)"
    assert with_bytes == without_bytes
    # and the model's generator ends where the in-process fit leaves it
    assert with_model.rng.bit_generator.state == without_model.rng.bit_generator.state


def test_no_producer_where_it_cannot_follow_the_draws_or_has_no_core():
    assert why_not(0.0, 2.0) is None
    assert "dropout" in why_not(0.1, 2.0)
    assert "1 usable CPU" in why_not(0.0, 1.0)
    assert why_not(0.0, 2.0, hooked=False) == "no batch hook"   # the reference recipe: gathers only
    assert why_not(0.0, 2.0, threads=1) == "one BLAS thread"


def test_a_one_thread_fit_stays_one_process(digits, monkeypatch):
    # --threads 1 (or OPENBLAS_NUM_THREADS=1) asks for one busy core: no second process beside it
    monkeypatch.setattr(recipe, "usable_cpus", lambda: 2.0)
    _, _, report = ml.fit_recipe(SMALL, *digits, threads=1)
    assert report["batch_producer"] == "in-process (one BLAS thread)"


def test_a_fit_without_a_batch_hook_gets_no_producer_process(digits, monkeypatch):
    # no distortions, shifts or non-digits (like the reference recipe): a batch is a gather, made in-process
    monkeypatch.setattr(recipe, "usable_cpus", lambda: 2.0)
    monkeypatch.setattr(producer, "ProcessBatches", None)   # calling it would fail the test
    plain = dataclasses.replace(SMALL, augment=0.0, shift=0, outliers=0.0, epochs=1)
    _, _, report = ml.fit_recipe(plain, *digits, threads=2)
    assert report["batch_producer"] == "in-process (no batch hook)"


def test_a_failed_fork_falls_back_to_in_process_batches(digits, tmp_path, monkeypatch):
    def no_fork():
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(producer.os, "fork", no_fork)
    data, report, _ = fit_file(digits, tmp_path, monkeypatch, True)
    assert report["batch_producer"] == "in-process (fork failed: [Errno 12] Cannot allocate memory)"
    monkeypatch.undo()
    assert data == fit_file(digits, tmp_path, monkeypatch, False)[0]


def recording(pids, **source_options):
    """A batch source that makes ``ProcessBatches`` and notes each producer's pid in ``pids``."""
    def source(*args):
        made = ProcessBatches(*args, **source_options)
        pids.append(made.pid)
        return made
    return source


def assert_reaped(pids):
    """Every producer in ``pids`` has exited and been waited for: none is left running or a zombie."""
    assert pids
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def small_fit(hook, pids=None, **source_options):
    """An MLP.fit of 600 random rows through ``hook`` with the producer; returns what it raised."""
    rng = np.random.default_rng(0)
    x, y = rng.random((600, 784), dtype=np.float32), rng.integers(0, 10, 600)
    model = ml.MLP([784, 16, 10], seed=0)
    with pytest.raises(ProducerError) as caught:
        model.fit(x, y, epochs=3, batch_size=50, batch_hook=hook,
                  batch_source=recording([] if pids is None else pids, **source_options))
    return caught.value


def test_a_producer_that_dies_mid_fit_stops_the_fit_with_a_clear_error():
    calls = []

    def hook(xb, yb, rng):   # runs in the producer: it dies on the 15th batch, in the second epoch
        calls.append(1)
        if len(calls) == 15:
            os._exit(3)
        return xb, yb

    # a death not noticed would end in the 30 s timeout's message instead
    error = small_fit(hook, timeout=30.0)
    assert "died mid-fit: exit status 3" in str(error)


def test_a_stalled_producer_times_out_and_is_stopped():
    def hook(xb, yb, rng):
        time.sleep(60)
        return xb, yb

    pids = []
    error = small_fit(hook, pids, timeout=1.0)
    assert "made no batch in 1 s" in str(error)
    assert_reaped(pids)   # stopped and reaped: no child left behind


def test_a_failing_batch_hook_names_its_error():
    def hook(xb, yb, rng):
        raise ValueError("bad batch")

    assert "ValueError: bad batch" in str(small_fit(hook))


def test_an_early_stop_ends_the_producer_and_keeps_the_same_weights():
    rng = np.random.default_rng(1)
    x, y = rng.random((900, 784), dtype=np.float32), rng.integers(0, 10, 900)
    runs = []
    pids = []
    for source in (None, recording(pids)):
        model = ml.MLP([784, 16, 10], seed=0)
        hook = training_hook(0.5, 1, model.rng)
        history = model.fit(x, y, epochs=20, batch_size=64, batch_hook=hook, batch_source=source,
                            callbacks=[lambda record, model: record["epoch"] == 2])
        runs.append((model.flat_params.tobytes(), model.rng.bit_generator.state, len(history["epoch"])))
    assert_reaped(pids)   # the producer was stopped and reaped at the early stop
    assert runs[0] == runs[1]
    assert runs[0][2] == 2


def test_the_contention_watch_counts_the_producer_as_the_fits_own_work():
    pid = os.fork()
    if pid == 0:   # a child that burns ~0.3 s of CPU
        end = time.process_time() + 0.3
        while time.process_time() < end:
            pass
        os._exit(0)
    before = threads.own_cpu()
    time.sleep(0.1)
    during = threads.own_cpu()   # the running child's CPU, read from /proc
    os.waitpid(pid, 0)
    after = threads.own_cpu()    # now in RUSAGE_CHILDREN
    assert during >= before
    assert after - before >= 0.25
