"""mnistlite.drift: PSI, the training reference saved by fit_recipe, and the sliding window the service
keeps."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mnistlite as ml
from mnistlite import drift

mixes = st.lists(st.integers(0, 50), min_size=3, max_size=3)


@given(mixes, mixes)
def test_psi_is_symmetric_non_negative_and_zero_only_on_equal_mixes(a, b):
    d = drift.psi(a, b)
    assert d >= 0 and d == pytest.approx(drift.psi(b, a))
    if sum(a) and sum(b) and np.allclose(drift.shares(a), drift.shares(b)):
        assert d == pytest.approx(0, abs=1e-12)


def test_psi_known_value_and_bad_shapes():
    # (0.5 - 0.25) ln 2 + (0.5 - 0.75) ln (2/3)
    assert drift.psi([1, 1], [1, 3]) == pytest.approx(0.25 * np.log(2) - 0.25 * np.log(2 / 3))
    assert drift.psi([0, 10], [10, 0]) == pytest.approx(2 * (1 - drift.FLOOR) * np.log(1 / drift.FLOOR))
    with pytest.raises(ValueError, match="same bins"):
        drift.psi([1, 2], [1, 2, 3])


def test_reference_shares_and_bins():
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.55, 0.45], [0.0, 1.0]], np.float32)
    ref = drift.reference(p, "test")
    assert ref["classes"] == [0.5, 0.5] and ref["n"] == 4 and ref["source"] == "test"
    # confidences 0.9, 0.8, 0.55, 1.0 -> bins (0.85, 0.9], (0.7, 0.8], (0.5, 0.6], (0.999, 1]
    expected = np.zeros(len(drift.CONFIDENCE_EDGES) + 1)
    for c in (0.9, 0.8, 0.55, 1.0):
        expected[drift.confidence_bin(c)] += 0.25
    assert ref["confidence"] == expected.tolist() and sum(ref["confidence"]) == pytest.approx(1)
    assert drift.confidence_bin(0.9) == drift.CONFIDENCE_EDGES.index(0.9)   # `le` semantics, as Prometheus
    with pytest.raises(ValueError, match="probabilities"):
        drift.reference(np.zeros((0, 10)), "test")


@given(st.lists(st.tuples(st.integers(0, 2), st.floats(0.34, 1.0)), max_size=60), st.integers(1, 20))
def test_sliding_mix_counts_the_last_window_answers(answers, window):
    ref = drift.reference(np.full((1, 3), 1 / 3), "test")
    mix = drift.SlidingMix(ref, window)
    for c, conf in answers:
        mix.add(c, conf)
    last = answers[-window:] if answers else []
    assert mix.count == len(last)
    assert mix.classes == np.bincount([c for c, _ in last], minlength=3).tolist()
    bins = [drift.confidence_bin(conf) for _, conf in last]
    assert mix.confidence == np.bincount(bins, minlength=len(ref["confidence"])).tolist()


def test_fit_recipe_saves_the_reference_from_test_data(mnist_uint8, tmp_path):
    (x, y), (xt, yt) = mnist_uint8
    cfg = ml.TrainConfig(hidden=(16,), epochs=1, batch_size=128, augment=0.0, shift=0, outliers=0.0,
                         val_split=0.0)
    model, _, report = ml.fit_recipe(cfg, x[:3000], y[:3000], xt[:2000], yt[:2000])
    ref = model.metadata["drift_reference"]
    assert ref["source"] == "test" and ref["n"] == 2000
    pred = model.predict_proba(xt[:2000]).argmax(axis=1)
    assert ref["classes"] == pytest.approx(np.bincount(pred, minlength=10) / 2000, abs=1e-6)
    loaded = ml.load(ml.save(model, tmp_path / "m.npz"))
    assert loaded.metadata["drift_reference"] == ref
    # no test data: the validation hold-out is the reference
    cfg = ml.TrainConfig(hidden=(16,), epochs=1, batch_size=128, augment=0.0, shift=0, outliers=0.0,
                         val_split=0.1)
    model, _, report = ml.fit_recipe(cfg, x[:3000], y[:3000])
    assert model.metadata["drift_reference"]["source"] == "validation"
    assert model.metadata["drift_reference"]["n"] == report["n_val"] == 300
