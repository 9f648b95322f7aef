"""``judge`` of one image (a service upload) takes a scalar path: it must give exactly the vectorised
path's judgement, whatever the thresholds, ties and abstentions."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mnistlite.nn.calibration import Calibration, decide, top_two
from mnistlite.quality import honest


def _nudged(v: float, steps: int) -> float:
    """The float64 ``steps`` float32 spacings above (below) float32 ``v``, plus half a float64 ulp: a
    threshold that only a float32 comparison reads right."""
    f = np.float32(v)
    for _ in range(abs(steps)):
        f = np.nextafter(f, np.float32(np.inf if steps > 0 else -np.inf))
    return float(f) + (1e-12 if steps >= 0 else -1e-12)


@given(st.integers(2, 12), st.integers(0, 2**31 - 1), st.booleans(), st.integers(-2, 2), st.integers(-2, 2),
       st.sampled_from([None, -1, 0, 1]))
def test_decide_one_is_decide_of_one_row(k, seed, ties, conf_step, pair_step, logit_step):
    rng = np.random.default_rng(seed)
    p = rng.random((1, k)).astype(np.float32)
    if ties:
        p = np.round(p, 1)
    p += np.float32(1e-3)
    p /= p.sum(axis=1, keepdims=True)
    p1, pair, _, _ = top_two(p)
    top = np.float32(rng.normal(3, 1))
    min_logit = None if logit_step is None else _nudged(top, logit_step)
    cal = Calibration(1.0, min(_nudged(p1[0], conf_step), 1.0), min(_nudged(pair[0], pair_step), 1.0),
                      min_logit=min_logit)
    want = int(decide(p, cal, np.array([top]))[0])
    assert honest.decide_one(p[0].tolist(), cal, float(top)) == want
    assert honest.decide_one(p[0].tolist(), None, float(top)) == 0


def _same(a, b):
    assert a.proba.tobytes() == b.proba.tobytes()
    assert a.verdict.dtype == b.verdict.dtype and a.verdict.tolist() == b.verdict.tolist()
    assert a.reasons == b.reasons
    assert a.warnings == b.warnings


def _images(mnist_uint8) -> list:
    """Test digits, a blank, an almost blank, pure noise, a faint smudge and a solid block."""
    _, (xt, _) = mnist_uint8
    rng = np.random.default_rng(0)
    faint = np.zeros((28, 28), np.uint8)
    faint[10:14, 10:14] = 30
    block = np.zeros((28, 28), np.uint8)
    block[4:24, 4:24] = 255
    dot = np.zeros((28, 28), np.uint8)
    dot[14, 14] = 255
    extra = [np.zeros((28, 28), np.uint8), dot, rng.integers(0, 256, (28, 28), dtype=np.uint8), faint, block]
    return list(xt[:150]) + extra


@pytest.mark.parametrize("thresholds", ["model", "tight", "none"])
def test_one_image_is_judged_as_the_batch_path_judges_it(small_model, mnist_uint8, thresholds):
    model = small_model
    saved = model.calibration
    try:
        if thresholds == "none":
            model.calibration = None
        else:
            # "tight": many abstentions of both kinds, so their reasons are compared too
            conf, pair = (0.5, 0.3) if thresholds == "model" else (0.995, 0.9)
            model.calibration = Calibration(0.8, conf, pair, min_logit=2.0 if thresholds == "tight" else None)
        verdicts = set()
        for image in _images(mnist_uint8):
            one = image[None]
            for no_ink in (None, np.array([False]), np.array([True])):
                got = honest.judge(model, one, no_ink=no_ink)
                _same(got, honest._judge_many(model, one, None, no_ink))
                verdicts.add(int(got.verdict[0]))
            x = one.reshape(1, 784).astype(np.float32) / np.float32(255)
            _same(honest.judge(model, one, x=x), honest._judge_many(model, one, x, None))
        assert verdicts == {"none": {0}, "model": verdicts | {0, 2}, "tight": {0, 1, 2}}[thresholds]
    finally:
        model.calibration = saved

