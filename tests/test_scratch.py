"""helpers.scratch against its framework twins: PyTorch (and Keras where the course uses it) must agree."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers import scratch

RNG = np.random.default_rng(0)


def t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def keras():
    from helpers import quiet_tensorflow

    quiet_tensorflow()
    import keras

    return keras


def test_importing_scratch_imports_no_framework():
    code = "import sys, helpers.scratch; print(sorted({'torch', 'tensorflow', 'keras'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("name, twin", [
    ("relu", torch.relu), ("sigmoid", torch.sigmoid), ("tanh", torch.tanh),
    ("gelu", torch.nn.functional.gelu),
])
def test_activations_and_derivatives_match_autograd(name, twin):
    x = np.concatenate([np.linspace(-30, 30, 601), RNG.normal(size=100)])
    x = x[np.abs(x) > 1e-9]  # ReLU has no derivative at exactly 0
    xt = t(x).requires_grad_()
    yt = twin(xt)
    yt.sum().backward()
    np.testing.assert_allclose(getattr(scratch, name)(x), yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(getattr(scratch, name + "_grad")(x), xt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_sigmoid_does_not_overflow():
    with np.errstate(over="raise"):
        assert scratch.sigmoid(np.array([-1000.0, 1000.0])).tolist() == [0.0, 1.0]


def test_softmax_and_log_softmax_are_stable_and_match_torch():
    z = RNG.normal(size=(5, 10)) * 50
    z[0] += 1000  # the naive formula overflows here
    np.testing.assert_allclose(scratch.softmax(z), torch.softmax(t(z), -1).numpy(), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(scratch.log_softmax(z), torch.log_softmax(t(z), -1).numpy(), rtol=1e-12)
    assert np.isfinite(scratch.log_softmax(z)).all()
    np.testing.assert_allclose(scratch.softmax(z, axis=0).sum(axis=0), 1.0)


def test_losses_and_gradients_match_torch():
    logits, labels = RNG.normal(size=(8, 10)) * 3, RNG.integers(0, 10, 8)
    lt = t(logits).requires_grad_()
    loss = torch.nn.functional.cross_entropy(lt, torch.from_numpy(labels))
    loss.backward()
    assert scratch.cross_entropy(logits, labels) == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(scratch.cross_entropy_grad(logits, labels), lt.grad.numpy(), atol=1e-14)

    pred, target = RNG.normal(size=(8, 3)), RNG.normal(size=(8, 3))
    pt = t(pred).requires_grad_()
    loss = torch.nn.functional.mse_loss(pt, t(target))
    loss.backward()
    assert scratch.mse(pred, target) == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(scratch.mse_grad(pred, target), pt.grad.numpy(), atol=1e-14)

    logits, targets = RNG.normal(size=20) * 40, RNG.integers(0, 2, 20).astype(float)
    lt = t(logits).requires_grad_()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(lt, t(targets))
    loss.backward()
    assert scratch.binary_cross_entropy(logits, targets) == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(scratch.binary_cross_entropy_grad(logits, targets), lt.grad.numpy(), atol=1e-14)
    assert scratch.one_hot(np.array([2, 0]), 3).tolist() == [[0, 0, 1], [1, 0, 0]]


def test_keras_losses_agree():
    k = keras()
    logits, labels = RNG.normal(size=(8, 10)), RNG.integers(0, 10, 8)
    ce = k.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits.astype(np.float32))
    assert scratch.cross_entropy(logits, labels) == pytest.approx(float(ce), rel=1e-5)
    pred, target = RNG.normal(size=(8, 3)), RNG.normal(size=(8, 3))
    assert scratch.mse(pred, target) == pytest.approx(float(k.losses.MeanSquaredError()(target, pred)), rel=1e-5)


def torch_mlp(params: list[np.ndarray]) -> torch.nn.Sequential:
    """A torch MLP holding the same weights (Linear stores W transposed)."""
    layers = []
    for i in range(0, len(params), 2):
        linear = torch.nn.Linear(*params[i].shape).double()
        with torch.no_grad():
            linear.weight.copy_(t(params[i].T))
            linear.bias.copy_(t(params[i + 1]))
        layers += [linear, torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def test_mlp_forward_and_backward_match_torch_autograd():
    params = scratch.init_mlp([20, 16, 12, 10], seed=1, dtype=np.float64)
    assert [p.shape for p in params] == [(20, 16), (16,), (16, 12), (12,), (12, 10), (10,)]
    x, y = RNG.normal(size=(32, 20)), RNG.integers(0, 10, 32)
    loss, grads = scratch.mlp_loss_and_grads(params, x, y)
    model = torch_mlp(params)
    torch_loss = torch.nn.functional.cross_entropy(model(t(x)), torch.from_numpy(y))
    torch_loss.backward()
    assert loss == pytest.approx(torch_loss.item(), rel=1e-12)
    torch_grads = [p.grad.numpy() for p in model.parameters()]
    for mine, theirs in zip(grads, torch_grads, strict=True):
        np.testing.assert_allclose(mine, theirs.T if mine.ndim == 2 else theirs, rtol=1e-10, atol=1e-13)
    assert (scratch.mlp_predict(params, x, batch_size=5) == model(t(x)).argmax(1).numpy()).all()


def test_he_initialisation_has_the_right_spread():
    w = scratch.init_mlp([1000, 500], seed=0)[0]
    assert w.dtype == np.float32 and abs(w.std() - np.sqrt(2 / 1000)) < 1e-3


def test_gradient_check_agrees_with_backprop_and_catches_a_wrong_gradient():
    params = scratch.init_mlp([6, 5, 3], seed=2, dtype=np.float64)
    x, y = RNG.normal(size=(4, 6)), RNG.integers(0, 3, 4)
    _, grads = scratch.mlp_loss_and_grads(params, x, y)
    for p, g in zip(params, grads, strict=True):
        numeric = scratch.numerical_gradient(lambda: scratch.mlp_loss_and_grads(params, x, y)[0], p)
        assert scratch.relative_error(numeric, g) < 1e-7
    assert scratch.relative_error(numeric, 1.1 * g) > 0.04  # a 10% error is seen
    assert scratch.relative_error(np.zeros(3), np.zeros(3)) == 0.0


def naive_conv(x, w, b, stride, padding):
    """The definition, with loops: each output is a sum over a window (cross-correlation)."""
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, _, h, wd = x.shape
    f, _, kh, kw = w.shape
    out = np.zeros((n, f, (h - kh) // stride + 1, (wd - kw) // stride + 1))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            patch = x[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out


@pytest.mark.parametrize("stride, padding", [(1, 0), (1, 1), (2, 0), (2, 2)])
def test_conv2d_matches_torch_and_the_definition(stride, padding):
    x, w, b = RNG.normal(size=(2, 3, 9, 8)), RNG.normal(size=(4, 3, 3, 2)), RNG.normal(size=4)
    mine = scratch.conv2d(x, w, b, stride=stride, padding=padding)
    theirs = torch.nn.functional.conv2d(t(x), t(w), t(b), stride=stride, padding=padding).numpy()
    np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(mine, naive_conv(x, w, b, stride, padding), rtol=1e-10, atol=1e-12)
    assert scratch.conv2d(x, w).shape == (2, 4, 7, 7)


def test_max_pool_matches_torch():
    x = RNG.normal(size=(2, 3, 9, 8))
    for size, stride in [(2, None), (3, 2), (2, 1)]:
        theirs = torch.nn.functional.max_pool2d(t(x), size, stride).numpy()
        np.testing.assert_array_equal(scratch.max_pool2d(x, size, stride), theirs)


def test_conv_and_pool_match_keras():
    k = keras()
    x, w, b = RNG.normal(size=(2, 1, 28, 28)).astype(np.float32), RNG.normal(size=(8, 1, 5, 5)), RNG.normal(size=8)
    layer = k.layers.Conv2D(8, 5)
    layer.build((None, 28, 28, 1))
    layer.set_weights([w.transpose(2, 3, 1, 0), b])  # Keras: (kh, kw, in, out) and channels last
    theirs = np.asarray(layer(x.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(scratch.conv2d(x.astype(np.float64), w, b), theirs, atol=1e-4, rtol=1e-5)
    pooled = np.asarray(k.layers.MaxPooling2D(2)(x.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(scratch.max_pool2d(x), pooled)


def test_rnn_matches_torch():
    rnn = torch.nn.RNN(5, 7, batch_first=True).double()
    xs, h0 = RNG.normal(size=(3, 6, 5)), RNG.normal(size=(3, 7))
    weights = [p.detach().numpy() for p in (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0)]
    outputs, h = scratch.rnn_forward(xs, h0, *weights)
    theirs, h_theirs = rnn(t(xs), t(h0)[None])
    np.testing.assert_allclose(outputs, theirs.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h, h_theirs[0].detach().numpy(), rtol=1e-12, atol=1e-14)


def test_lstm_matches_torch():
    lstm = torch.nn.LSTM(5, 7, batch_first=True).double()
    xs, h0, c0 = RNG.normal(size=(3, 6, 5)), RNG.normal(size=(3, 7)), RNG.normal(size=(3, 7))
    weights = [p.detach().numpy() for p in (lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)]
    outputs, (h, c) = scratch.lstm_forward(xs, h0, c0, *weights)
    theirs, (h_theirs, c_theirs) = lstm(t(xs), (t(h0)[None], t(c0)[None]))
    np.testing.assert_allclose(outputs, theirs.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c, c_theirs[0].detach().numpy(), rtol=1e-12, atol=1e-14)


def test_lstm_matches_keras():
    k = keras()
    xs = RNG.normal(size=(3, 6, 5)).astype(np.float32)
    layer = k.layers.LSTM(7, return_sequences=True)
    layer.build((None, 6, 5))
    kernel, recurrent, bias = layer.get_weights()  # (D, 4H), (H, 4H), (4H,), gates i, f, c, o
    zeros = np.zeros((3, 7))
    outputs, _ = scratch.lstm_forward(xs.astype(np.float64), zeros, zeros, kernel.T, recurrent.T, bias, 0 * bias)
    np.testing.assert_allclose(outputs, np.asarray(layer(xs)), atol=1e-5)


def run_torch_optimizer(make, params, grad_fn, steps):
    tensors = [t(p).requires_grad_() for p in params]
    opt = make(tensors)
    for _ in range(steps):
        opt.zero_grad()
        for p, g in zip(tensors, grad_fn([p.detach().numpy() for p in tensors]), strict=True):
            p.grad = t(g)
        opt.step()
    return [p.detach().numpy() for p in tensors]


@pytest.mark.parametrize("ours, theirs", [
    (lambda p: scratch.SGD(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    (lambda p: scratch.SGD(p, lr=0.05, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    (lambda p: scratch.RMSProp(p, lr=0.01), lambda p: torch.optim.RMSprop(p, lr=0.01)),
    (lambda p: scratch.Adam(p, lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
])
def test_optimizers_match_torch_step_for_step(ours, theirs):
    params = scratch.init_mlp([6, 5, 3], seed=3, dtype=np.float64)
    x, y = RNG.normal(size=(16, 6)), RNG.integers(0, 3, 16)

    def grad_fn(ps):
        return scratch.mlp_loss_and_grads(ps, x, y)[1]

    expected = run_torch_optimizer(theirs, params, grad_fn, steps=25)
    start = [p.copy() for p in params]
    opt = ours(params)
    for _ in range(25):
        opt.step(grad_fn(params))
    for mine, other, before in zip(params, expected, start, strict=True):
        np.testing.assert_allclose(mine, other, rtol=1e-10, atol=1e-12)
        assert not np.allclose(mine, before)  # the parameters really moved
