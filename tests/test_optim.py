"""One hand-worked step (or two) per optimizer, the schedules' shapes, and no per-step allocations."""
import tracemalloc

import numpy as np
import pytest

import mnistlite as ml
from mnistlite.nn.optim import SCHEDULES, schedule_fn


def bound(opt, p, g, decay=False):
    params = np.array(p, dtype=np.float32)
    grads = np.array(g, dtype=np.float32)
    opt.bind(params, grads, [params] if decay else [])
    return params, grads


def test_sgd_plain_step():
    opt = ml.SGD(0.1)
    p, g = bound(opt, [1.0, 2.0], [0.5, -1.0])
    opt.step()
    np.testing.assert_allclose(p, [0.95, 2.1], rtol=1e-6)


def test_sgd_momentum_two_steps():
    opt = ml.SGD(0.1, momentum=0.9)
    p, g = bound(opt, [1.0], [1.0])
    opt.step()                 # v = 1,           p = 1 - 0.1 * 1 = 0.9
    g[...] = 0.5
    opt.step()                 # v = 0.9 + 0.5 = 1.4, p = 0.9 - 0.14 = 0.76
    np.testing.assert_allclose(p, [0.76], rtol=1e-6)


def test_sgd_nesterov_step():
    opt = ml.SGD(0.1, momentum=0.9, nesterov=True)
    p, g = bound(opt, [1.0], [1.0])
    opt.step()                 # v = 1, step along g + 0.9 v = 1.9: p = 1 - 0.19
    np.testing.assert_allclose(p, [0.81], rtol=1e-6)
    opt.step()                 # v = 1.9, step along 1 + 1.71 = 2.71: p = 0.81 - 0.271
    np.testing.assert_allclose(p, [0.539], rtol=1e-6)


def test_adam_two_steps_match_the_textbook():
    opt = ml.Adam(0.1)
    p, g = bound(opt, [1.0, -2.0], [0.5, -0.25])
    opt.step()
    # step 1: mhat = g, vhat = g^2, so each weight moves by lr * sign(g)
    np.testing.assert_allclose(p, [0.9, -1.9], rtol=1e-6)
    g[...] = [0.1, 0.2]
    opt.step()
    # worked by hand: m = .9*.05 + .1*.1 = .055, v = .999*.00025 + .001*.01 = .00025975,
    # mhat = .055/.19, vhat = .00025975/.001999, p = .9 - .1*mhat/sqrt(vhat) = .819696...
    np.testing.assert_allclose(p, [0.8196961, -1.8941875], rtol=2e-6)
    np.testing.assert_allclose(opt.first_moment, [0.055, -0.0025], rtol=1e-5)
    np.testing.assert_allclose(opt.second_moment, [0.00025975, 0.0001024375], rtol=1e-5)


def test_adamw_decays_weights_decoupled_from_the_gradient():
    opt = ml.AdamW(0.1, weight_decay=0.1)
    p, g = bound(opt, [1.0, -2.0], [0.5, -0.25], decay=True)
    opt.step()
    # first shrink by (1 - lr * wd) = 0.99, then the Adam step of lr * sign(g)
    np.testing.assert_allclose(p, [0.89, -1.88], rtol=1e-6)


def test_adam_moments_of_idle_weights_never_turn_subnormal():
    """A weight whose gradient goes to 0 (a rarely-inked pixel) must not leave subnormals behind."""
    opt = ml.Adam(1e-3)
    p, g = bound(opt, np.ones(1000), np.full(1000, 1e-3))
    for _ in range(5):
        opt.step()
    g[...] = 0
    tiny = np.finfo(np.float32).tiny
    for _ in range(3000):  # 0.9**3000 would take m far below the smallest normal float32
        opt.step()
        if opt.t % 100 == 0:
            for arr in (opt.m, opt.v):
                assert not np.any((arr != 0) & (np.abs(arr) < tiny)), f"subnormal state at step {opt.t}"
    assert np.all(opt.m == 0)


@pytest.mark.parametrize("opt", [ml.SGD(0.1), ml.SGD(0.1, momentum=0.9, nesterov=True), ml.Adam(),
                                 ml.AdamW()])
def test_steps_allocate_nothing_parameter_sized(opt):
    n = 200_000
    p, g = bound(opt, np.zeros(n), np.ones(n))
    opt.step()
    tracemalloc.start()
    for _ in range(5):
        opt.step()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < n * 4 / 10, f"a step allocated {peak} bytes for {n} float32 parameters"


def test_schedules_shapes():
    total = 100
    f = {name: [schedule_fn(name)(s, total) for s in range(total + 1)] for name in SCHEDULES}
    assert set(f["constant"]) == {1.0}
    assert f["cosine"][0] == 1.0 and f["cosine"][50] == pytest.approx(0.5)
    assert f["cosine"][100] == pytest.approx(0)
    # consecutive pairs: the shifted copy is one shorter on purpose
    assert all(a >= b for a, b in zip(f["cosine"], f["cosine"][1:], strict=False))
    assert f["step"][0] == 1.0 and f["step"][60] == pytest.approx(0.1)
    assert f["step"][80] == pytest.approx(0.01)
    one = f["onecycle"]
    assert one[0] < 0.1 and max(one) == pytest.approx(1.0) and one.index(max(one)) == 25 and one[-1] < 0.01


@pytest.mark.parametrize("bad, message", [
    (lambda: ml.SGD(0), "lr must be > 0"),
    (lambda: ml.Adam(-1e-3), "lr must be > 0"),
    (lambda: ml.SGD(0.1, momentum=1.5), "momentum must be in [0, 1)"),
    (lambda: ml.SGD(0.1, nesterov=True), "nesterov=True needs momentum"),
    (lambda: ml.make_optimizer("rmsprop", 0.1), "optimizer must be one of ['adam', 'adamw', 'sgd']"),
    (lambda: schedule_fn("linear"), "schedule must be one of"),
    (lambda: ml.TrainConfig(lr=0), "lr must be > 0"),
    (lambda: ml.TrainConfig(activation="gelu"), "activation must be one of ['relu', 'tanh']"),
    (lambda: ml.TrainConfig(hidden=(0,)), "hidden sizes must be > 0"),
])
def test_bad_settings_name_the_problem(bad, message):
    with pytest.raises(ValueError) as e:
        bad()
    assert message in str(e.value)
