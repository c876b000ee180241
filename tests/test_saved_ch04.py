"""Chapter 4's saved NumPy code (helpers.saved.ch04) against its framework twins: PyTorch (and Keras where the
course uses it) must agree. The module is generated from notebooks/ch04_algorithms.ipynb (cells tagged `save`)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers.saved import ch04

RNG = np.random.default_rng(0)


def t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def keras():
    from helpers import quiet_tensorflow

    quiet_tensorflow()
    import keras

    return keras


def test_importing_ch04_imports_no_framework():
    code = "import sys, helpers.saved.ch04; print(sorted({'torch', 'tensorflow', 'keras'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("name, twin", [("relu", torch.relu), ("sigmoid", torch.sigmoid)])
def test_activations_match_torch(name, twin):
    x = np.concatenate([np.linspace(-30, 30, 601), RNG.normal(size=100)])
    np.testing.assert_allclose(getattr(ch04, name)(x), twin(t(x)).numpy(), rtol=1e-12, atol=1e-12)


def test_sigmoid_does_not_overflow():
    with np.errstate(over="raise"):
        assert ch04.sigmoid(np.array([-1000.0, 1000.0])).tolist() == [0.0, 1.0]


def test_softmax_is_stable_and_matches_torch():
    z = RNG.normal(size=(5, 10)) * 50
    z[0] += 1000  # the naive formula overflows here
    np.testing.assert_allclose(ch04.softmax(z), torch.softmax(t(z), -1).numpy(), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(ch04.softmax(z, axis=0).sum(axis=0), 1.0)


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
    params = ch04.init_mlp([20, 16, 12, 10], seed=1, dtype=np.float64)
    assert [p.shape for p in params] == [(20, 16), (16,), (16, 12), (12,), (12, 10), (10,)]
    x, y = RNG.normal(size=(32, 20)), RNG.integers(0, 10, 32)
    loss, grads = ch04.mlp_loss_and_grads(params, x, y)
    model = torch_mlp(params)
    torch_loss = torch.nn.functional.cross_entropy(model(t(x)), torch.from_numpy(y))
    torch_loss.backward()
    assert loss == pytest.approx(torch_loss.item(), rel=1e-12)
    torch_grads = [p.grad.numpy() for p in model.parameters()]
    for mine, theirs in zip(grads, torch_grads, strict=True):
        np.testing.assert_allclose(mine, theirs.T if mine.ndim == 2 else theirs, rtol=1e-10, atol=1e-13)
    assert (ch04.mlp_predict(params, x, batch_size=5) == model(t(x)).argmax(1).numpy()).all()


def test_mlp_loss_is_finite_for_extreme_logits():
    params = [np.array([[1.0, -1.0]]) * 1000, np.zeros(2)]  # softmax(z)_y underflows to 0: log(0) would be -inf
    x, y = np.array([[1.0], [2.0]]), np.array([1, 1])
    loss, grads = ch04.mlp_loss_and_grads(params, x, y)
    expected = -torch.log_softmax(t(x @ params[0]), 1)[[0, 1], [1, 1]].mean().item()
    assert np.isfinite(loss) and loss == pytest.approx(expected, rel=1e-12)  # (2000 + 4000) / 2
    assert all(np.isfinite(g).all() for g in grads)


def test_he_initialisation_has_the_right_spread():
    w = ch04.init_mlp([1000, 500], seed=0)[0]
    assert w.dtype == np.float32 and abs(w.std() - np.sqrt(2 / 1000)) < 1e-3


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
    mine = ch04.conv2d(x, w, b, stride=stride, padding=padding)
    theirs = torch.nn.functional.conv2d(t(x), t(w), t(b), stride=stride, padding=padding).numpy()
    np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(mine, naive_conv(x, w, b, stride, padding), rtol=1e-10, atol=1e-12)
    assert ch04.conv2d(x, w).shape == (2, 4, 7, 7)


def test_max_pool_matches_torch():
    x = RNG.normal(size=(2, 3, 9, 8))
    for size, stride in [(2, None), (3, 2), (2, 1)]:
        theirs = torch.nn.functional.max_pool2d(t(x), size, stride).numpy()
        np.testing.assert_array_equal(ch04.max_pool2d(x, size, stride), theirs)


def test_conv_and_pool_match_keras():
    k = keras()
    x, w, b = RNG.normal(size=(2, 1, 28, 28)).astype(np.float32), RNG.normal(size=(8, 1, 5, 5)), RNG.normal(size=8)
    layer = k.layers.Conv2D(8, 5)
    layer.build((None, 28, 28, 1))
    layer.set_weights([w.transpose(2, 3, 1, 0), b])  # Keras: (kh, kw, in, out) and channels last
    theirs = np.asarray(layer(x.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(ch04.conv2d(x.astype(np.float64), w, b), theirs, atol=1e-4, rtol=1e-5)
    pooled = np.asarray(k.layers.MaxPooling2D(2)(x.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(ch04.max_pool2d(x), pooled)


def test_rnn_matches_torch():
    rnn = torch.nn.RNN(5, 7, batch_first=True).double()
    xs, h0 = RNG.normal(size=(3, 6, 5)), RNG.normal(size=(3, 7))
    weights = [p.detach().numpy() for p in (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0)]
    outputs, h = ch04.rnn_forward(xs, h0, *weights)
    theirs, h_theirs = rnn(t(xs), t(h0)[None])
    np.testing.assert_allclose(outputs, theirs.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h, h_theirs[0].detach().numpy(), rtol=1e-12, atol=1e-14)


def test_lstm_matches_torch():
    lstm = torch.nn.LSTM(5, 7, batch_first=True).double()
    xs, h0, c0 = RNG.normal(size=(3, 6, 5)), RNG.normal(size=(3, 7)), RNG.normal(size=(3, 7))
    weights = [p.detach().numpy() for p in (lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)]
    outputs, (h, c) = ch04.lstm_forward(xs, h0, c0, *weights)
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
    outputs, _ = ch04.lstm_forward(xs.astype(np.float64), zeros, zeros, kernel.T, recurrent.T, bias, 0 * bias)
    np.testing.assert_allclose(outputs, np.asarray(layer(xs)), atol=1e-5)
