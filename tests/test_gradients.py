"""Central-difference gradient checks for every layer, the loss and the whole MLP (hypothesis shapes)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mnistlite as ml
from mnistlite.nn.layers import Activation, Dense, Dropout
from mnistlite.nn.losses import SoftmaxCrossEntropy

H = 1e-2  # float32 arithmetic: a larger step keeps rounding error far below the tolerance


def numeric_grad(f, arr, h=H):
    """d f / d arr by central differences, perturbing ``arr`` in place (restored afterwards)."""
    g = np.zeros(arr.shape, dtype=np.float64)
    flat, gflat = arr.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        fp = f()
        flat[i] = old - h
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * h)
    return g


def assert_close(analytic, numeric, rtol=2e-2, atol=2e-3):
    np.testing.assert_allclose(np.asarray(analytic, dtype=np.float64), numeric, rtol=rtol, atol=atol)


shapes = st.tuples(st.integers(1, 5), st.integers(1, 6), st.integers(1, 5))


@settings(max_examples=25, deadline=None)
@given(shapes, st.integers(0, 2**31 - 1))
def test_dense_gradients(shape, seed):
    n, d_in, d_out = shape
    rng = np.random.default_rng(seed)
    layer = Dense(d_in, d_out, rng=rng)
    layer.b[...] = rng.standard_normal(d_out)
    x = rng.standard_normal((n, d_in)).astype(np.float32)
    r = rng.standard_normal((n, d_out)).astype(np.float32)  # loss = sum(y * r): dL/dy = r

    def loss():
        return float(np.sum(layer.forward(x).astype(np.float64) * r))

    layer.forward(x)
    dx = layer.backward(r.copy())
    assert_close(layer.dW, numeric_grad(loss, layer.W))
    assert_close(layer.db, numeric_grad(loss, layer.b))
    assert_close(dx, numeric_grad(loss, x))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 30), st.integers(1, 5), st.floats(0.0, 1.0),
       st.integers(0, 2**31 - 1))
def test_first_layer_skips_blank_columns_without_changing_results(n, d_in, d_out, blank_share, seed):
    """A first layer (no input gradient) in training works on the batch's non-blank columns only:
    the same outputs and gradients as the full products, exact zeros for blank pixels' weights."""
    rng = np.random.default_rng(seed)
    layer = Dense(d_in, d_out, rng=rng)
    layer.needs_input_grad = False
    layer.b[...] = rng.standard_normal(d_out)
    x = rng.random((n, d_in)).astype(np.float32)
    blank = rng.random(d_in) < blank_share
    x[:, blank] = 0
    r = rng.standard_normal((n, d_out)).astype(np.float32)
    y = layer.forward(x, training=True).copy()
    assert layer.backward(r.copy()) is None
    np.testing.assert_allclose(y, x.astype(np.float64) @ layer.W + layer.b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.dW, x.T.astype(np.float64) @ r, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.db, r.sum(axis=0), rtol=1e-5, atol=1e-5)
    assert not layer.dW[blank].any()
    # stale rows from an earlier, differently blank batch are cleared too
    layer.forward(np.ones_like(x), training=True)
    layer.backward(r.copy())
    layer.forward(x, training=True)
    layer.backward(r.copy())
    assert not layer.dW[blank].any()


@settings(max_examples=25, deadline=None)
@given(st.tuples(st.integers(1, 5), st.integers(1, 8)), st.sampled_from(["relu", "tanh"]),
       st.integers(0, 2**31 - 1))
def test_activation_gradients(shape, name, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    x[np.abs(x) < 3 * H] += np.float32(6 * H)  # keep away from ReLU's kink, where no derivative exists
    r = rng.standard_normal(shape).astype(np.float32)
    act = Activation(name)

    def loss():
        return float(np.sum(act.forward(x.copy()).astype(np.float64) * r))

    act.forward(x.copy())
    assert_close(act.backward(r.copy()), numeric_grad(loss, x))


@settings(max_examples=20, deadline=None)
@given(st.tuples(st.integers(1, 5), st.integers(1, 8)), st.floats(0.05, 0.9), st.integers(0, 2**31 - 1))
def test_dropout_gradient_with_fixed_mask(shape, p, seed):
    rng = np.random.default_rng(seed)
    layer = Dropout(p, rng=rng)
    layer.mask = ((rng.random(shape) >= p) / (1 - p)).astype(np.float32)
    layer.fixed_mask = True
    x = rng.standard_normal(shape).astype(np.float32)
    r = rng.standard_normal(shape).astype(np.float32)

    def loss():
        return float(np.sum(layer.forward(x.copy(), training=True).astype(np.float64) * r))

    layer.forward(x.copy(), training=True)
    assert_close(layer.backward(r.copy()), numeric_grad(loss, x))
    # at inference dropout is the identity
    np.testing.assert_array_equal(layer.forward(x.copy(), training=False), x)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(2, 10), st.sampled_from([0.0, 0.1, 0.3]), st.integers(0, 2**31 - 1))
def test_softmax_cross_entropy_gradient(n, k, smoothing, seed):
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((n, k)) * 3).astype(np.float32)
    y = rng.integers(0, k, n)
    loss_fn = SoftmaxCrossEntropy(smoothing)
    loss_fn.forward(z, y)
    grad = loss_fn.backward().copy()
    assert_close(grad, numeric_grad(lambda: loss_fn.forward(z, y), z), atol=1e-3)
    # the backward is exactly (p - target) / n
    p = ml.softmax(z.astype(np.float64))
    target = np.full((n, k), smoothing / k)
    target[np.arange(n), y] += 1 - smoothing
    np.testing.assert_allclose(grad, (p - target) / n, atol=1e-6)
    # logits in Fortran order (a transposed product's view) give the same gradient
    loss_fn.forward(np.asfortranarray(z), y)
    np.testing.assert_allclose(loss_fn.backward(), grad, atol=1e-7)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=0, max_size=2), st.floats(0.0, 0.5), st.floats(0.0, 0.2),
       st.integers(0, 2**31 - 1))
def test_whole_mlp_gradient_with_l2_and_smoothing(hidden, weight_decay, smoothing, seed):
    """Backprop through the full stack, L2 term included, matches finite differences of the loss."""
    rng = np.random.default_rng(seed)
    model = ml.MLP([4, *hidden, 3], seed=seed)
    model.loss = SoftmaxCrossEntropy(smoothing)
    model.weight_decay = weight_decay
    x = rng.standard_normal((5, 4)).astype(np.float32)
    y = rng.integers(0, 3, 5)
    model.loss_and_grads(x, y)
    analytic = model.flat_grads.copy()
    numeric = numeric_grad(lambda: model.loss_and_grads(x, y)[0], model.flat_params)
    # a ReLU unit whose input sits within H of 0 has no finite-difference derivative: skip those cases
    h, kinks = x, False
    for W, b in model.weights[:-1]:
        z = h @ W + b
        kinks |= bool(np.any(np.abs(z) < 5 * H))
        h = np.maximum(z, 0)
    if kinks:
        # compare only the last layer's parameters, which sit after every kink
        last = model.weights[-1][0].size + model.weights[-1][1].size
        analytic, numeric = analytic[-last:], numeric[-last:]
    assert_close(analytic, numeric)


@pytest.mark.parametrize("bad", [-2, 3])
def test_loss_refuses_labels_outside_the_classes(bad):
    """A label past the last class (or below -1, the no-class label of outlier exposure) must not silently
    pick another row's logit."""
    z = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        SoftmaxCrossEntropy().forward(z, np.array([bad, 0]))


def test_softmax_is_stable_for_huge_logits():
    z = np.array([[1e4, 0, -1e4], [-1e4, -1e4, -1e4], [1e4, 1e4, 0]], dtype=np.float32)
    p = ml.softmax(z.copy())
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(p[0], [1, 0, 0])
    np.testing.assert_allclose(p[1], [1 / 3] * 3, atol=1e-6)
    loss_fn = SoftmaxCrossEntropy()
    loss = loss_fn.forward(z, np.array([0, 1, 2]))
    assert np.isfinite(loss)
    # sample 0 is right with certainty (loss 0), 1 is uniform (log 3), 2 trails two classes by 1e4
    assert loss == pytest.approx((0 + np.log(3) + 1e4 + np.log(2)) / 3, rel=1e-6)
    assert np.isfinite(loss_fn.backward()).all()
