"""Calibration and the reject rule: the temperature fit, the thresholds' policy, the decision, the
outlier-exposure loss, and their round trip through the model file (old files included)."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mnistlite as ml
from mnistlite.nn.calibration import (
    NOT_A_DIGIT,
    UNSURE,
    Calibration,
    choose_thresholds,
    decide,
    fit_temperature,
    reject_for_error,
    top_two,
)
from mnistlite.recipe import calibrate


def _sampled(temperature: float, n: int = 20000, k: int = 10, seed: int = 0):
    """Logits and labels drawn from softmax(logits / temperature): the true temperature is known."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 4, (n, k)).astype(np.float32)
    p = ml.softmax(z / np.float32(temperature)).astype(np.float64)
    y = (p.cumsum(1) > rng.random((n, 1))).argmax(1)
    return z, y


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_fit_temperature_finds_the_temperature_that_made_the_labels(true_t):
    z, y = _sampled(true_t)
    assert fit_temperature(z, y) == pytest.approx(true_t, rel=0.08)


def test_predict_proba_is_calibrated_only_with_a_calibration(small_model, mnist, tmp_path):
    _, (x, _) = mnist
    model = ml.load(ml.save(small_model, tmp_path / "m.npz"))   # a copy: the session's model stays as it is
    raw = model.predict_proba(x[:50])
    model.calibration = Calibration(temperature=0.5)
    sharp = model.predict_proba(x[:50])
    assert (sharp.max(1) >= raw.max(1) - 1e-6).all() and (sharp.max(1) > raw.max(1) + 1e-3).any()
    np.testing.assert_allclose(model.predict_proba(x[:50], calibrated=False), raw, rtol=1e-6)
    np.testing.assert_array_equal(sharp.argmax(1), raw.argmax(1))


@given(st.lists(st.floats(0.0, 1.0), min_size=10, max_size=10), st.floats(0.05, 1.0), st.floats(0.0, 1.0))
def test_decide_follows_both_thresholds(row, min_confidence, min_pair):
    p = np.asarray(row, np.float64) + 1e-3
    p = (p / p.sum())[None]
    cal = Calibration(1.0, min_confidence, min(min_pair, min_confidence))
    verdict = int(decide(p, cal)[0])
    top = np.sort(p[0])[::-1]
    if top[0] >= min_confidence:
        assert verdict == 0
    elif top[0] + top[1] >= cal.min_pair:
        assert verdict == UNSURE
    else:
        assert verdict == NOT_A_DIGIT
    assert int(decide(p, None)[0]) == 0   # no calibration (an old file): always an answer


def test_choose_thresholds_meets_its_policy_on_the_data_it_saw():
    z, y = _sampled(1.0, n=5000, seed=3)
    p = ml.softmax(z)
    chosen = choose_thresholds(p, y, {"target_error": 0.2, "max_reject": 0.3})
    assert chosen["min_logit"] is None
    answered = decide(p, Calibration(1.0, **chosen)) == 0
    error = (p.argmax(1)[answered] != y[answered]).mean()
    assert 1 - answered.mean() <= 0.3 + 1e-9
    assert error <= 0.2 + 1e-9 or 1 - answered.mean() >= 0.3 - 1e-3
    assert reject_for_error(p, y, 1.0) == 0.0 and reject_for_error(p, y, -1.0) == 1.0


def test_outlier_rows_are_pulled_to_uniform():
    """The outlier-exposure loss (label -1): its gradient matches a finite difference, and it is the
    cross-entropy to the uniform distribution."""
    rng = np.random.default_rng(1)
    z = rng.normal(0, 2, (6, 5)).astype(np.float64)
    y = np.array([0, 3, -1, 4, -1, 2])
    loss = ml.SoftmaxCrossEntropy(0.1)
    f0 = loss.forward(z.astype(np.float32), y)
    g = loss.backward().astype(np.float64)
    num = np.zeros_like(z)
    for i in range(6):
        for j in range(5):
            for s in (1, -1):
                zz = z.copy()
                zz[i, j] += s * 1e-3
                num[i, j] += s * ml.SoftmaxCrossEntropy(0.1).forward(zz.astype(np.float32), y) / 2e-3
    np.testing.assert_allclose(g, num, atol=2e-3)
    only = ml.SoftmaxCrossEntropy(0.0).forward(z[[2]].astype(np.float32), np.array([-1]))
    assert only == pytest.approx(float(-ml.log_softmax(z[[2]]).mean()), rel=1e-4)
    assert f0 > 0


def test_calibrate_lowers_held_out_loss_and_saves_with_the_model(mnist, tmp_path):
    """A label-smoothed model is under-confident; calibrate() on held-out digits fixes that, and the
    temperature and thresholds survive the model file. Skipping calibration leaves the ECE high."""
    (x, y), (xt, yt) = mnist
    config = ml.TrainConfig(hidden=(64,), epochs=2, batch_size=128, label_smoothing=0.2, augment=0.0,
                            shift=0, outliers=0.0, val_split=0.0)
    model, _ = ml.train(config, x[:12000], y[:12000])
    before = ml.expected_calibration_error(yt, model.predict_proba(xt))
    cal = calibrate(model, x[50000:55000], y[50000:55000])
    after = ml.expected_calibration_error(yt, model.predict_proba(xt))
    assert cal.temperature < 1 and after < before / 2, (before, after)
    assert cal.held_out["log_loss_after"] < cal.held_out["log_loss_before"]
    assert 0 < cal.min_pair <= cal.min_confidence < 1 and cal.min_logit is not None
    path = ml.save(model, tmp_path / "cal.npz")
    back = ml.load(path)
    assert back.calibration == cal
    np.testing.assert_allclose(back.predict_proba(xt[:100]), model.predict_proba(xt[:100]), rtol=1e-5)


def test_calibrate_reads_the_held_out_digits_as_the_model_does(small_model, mnist):
    """calibrate() runs one forward pass; its held-out figures and thresholds equal those computed from
    the model's own predict_scores and predict_proba (the slow path), over more rows than one chunk."""
    from mnistlite.metrics import log_loss

    (x, y), _ = mnist
    xv, yv = x[50000:55000], y[50000:55000]
    model = ml.MLP([784, 64, 10], seed=0)
    model.flat_params[:] = small_model.flat_params
    cal = calibrate(model, xv, yv)
    model.calibration = None
    raw, top = model.predict_scores(xv)
    model.calibration = Calibration(cal.temperature)
    p = model.predict_proba(xv)
    assert choose_thresholds(p, yv, cal.policy, top) == {k: getattr(cal, k) for k in
                                                          ("min_confidence", "min_pair", "min_logit")}
    assert cal.held_out["log_loss_before"] == log_loss(yv, raw)
    assert cal.held_out["log_loss_after"] == log_loss(yv, p)


def _as_version_1(path, out):
    """Rewrite a saved model as a format-1 file (before calibration existed): no "calibration" key."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays["__meta__"].tobytes())
    meta["format_version"] = 1
    meta.pop("calibration", None)
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(out, **arrays)
    return out


def test_an_old_format_file_loads_and_answers_as_before(small_model, mnist, tmp_path):
    _, (xt, _) = mnist
    new = ml.save(small_model, tmp_path / "new.npz")
    old = _as_version_1(new, tmp_path / "old.npz")
    with zipfile.ZipFile(old) as zf:
        assert "__meta__.npy" in zf.namelist()
    model = ml.load(old)
    assert model.calibration is None and model.metadata["format_version"] == 1
    np.testing.assert_allclose(model.predict_proba(xt[:64]), ml.softmax(model.logits(xt[:64])), rtol=1e-6)
    assert not decide(model.predict_proba(xt[:64]), model.calibration).any()


def test_min_logit_calls_low_scoring_rows_not_a_digit():
    p = np.array([[0.9] + [0.1 / 9] * 9] * 3)
    cal = Calibration(1.0, min_confidence=0.5, min_pair=0.2, min_logit=2.0)
    assert decide(p, cal, np.array([1.9, 2.0, 5.0])).tolist() == [NOT_A_DIGIT, 0, 0]
    assert decide(p, cal).tolist() == [0, 0, 0]   # without logits the rule cannot apply


def test_outlier_hook_adds_labelled_non_digits(mnist):
    from mnistlite.images.nondigits import KINDS, outlier_hook, outlier_pool

    (x, y), _ = mnist
    pool = outlier_pool(len(KINDS) * 2, np.random.default_rng(0), x[:100])
    assert pool.shape == (len(KINDS) * 2, 784) and pool.dtype == np.float32
    assert not pool[KINDS.index("blank")].any() and pool[KINDS.index("letter")].max() > 0.5
    xb, yb = outlier_hook(0.25, pool)(x[:64], y[:64], np.random.default_rng(1))
    assert xb.shape == (80, 784) and (yb[:64] == y[:64]).all() and (yb[64:] == -1).all()


def test_generated_noise_is_cleaned_as_noise_uploads_are():
    """Noise uploads are photo-sized, and preprocessing cleans pictures over ``ink.SMALL`` as photos
    (what it keeps is a smooth blob or bar): the training noise must mostly take that path too."""
    from mnistlite.images import ink, nondigits
    from mnistlite.images.preprocess import to_mnist

    rng = np.random.default_rng(5)
    raw = [nondigits._noise(rng) for _ in range(200)]
    sides = np.array([max(a.shape) for a in raw])
    assert (sides > ink.SMALL).mean() >= 0.65 and (sides >= 200).mean() >= 0.25
    paths = []
    for a in raw[:40]:
        info = {}
        to_mnist(a, info)
        paths.append(info["path"])
    assert paths.count("photo") >= 24


@given(st.integers(1, 40), st.integers(2, 12), st.integers(0, 2**31 - 1), st.booleans())
def test_decide_follows_the_top_two_rule_exactly(n, k, seed, ties):
    # decide finds each row's two largest without sorting: its verdicts must be the rule written
    # with top_two, ties and thresholds met exactly included.
    rng = np.random.default_rng(seed)
    p = rng.random((n, k)).astype(np.float32)
    if ties:
        p = np.round(p, 1)
    p += np.float32(1e-3)
    p /= p.sum(axis=1, keepdims=True)
    p1, pair, _, _ = top_two(p)
    cal = Calibration(1.0, float(np.median(p1)), float(np.median(pair)))
    expected = np.where(p1 >= cal.min_confidence, 0, np.where(pair >= cal.min_pair, 1, 2))
    assert decide(p, cal).tolist() == expected.tolist()
