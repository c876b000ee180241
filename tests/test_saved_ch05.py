"""Chapter 5's saved NumPy code (helpers.saved.ch05) against its framework twins: activations' derivatives, losses
and their gradients, the gradient check and the optimizers must agree with PyTorch (and Keras where the course uses
it). The module is generated from notebooks/ch05_math.ipynb (cells tagged `save`)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers.saved import ch04, ch05

RNG = np.random.default_rng(0)


def t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def keras():
    from helpers import quiet_tensorflow

    quiet_tensorflow()
    import keras

    return keras


def test_importing_ch05_imports_no_framework():
    code = "import sys, helpers.saved.ch05; print(sorted({'torch', 'tensorflow', 'keras'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("name, twin", [
    ("relu", torch.relu), ("sigmoid", torch.sigmoid), ("tanh", torch.tanh),
    ("gelu", torch.nn.functional.gelu),
])
def test_activations_and_derivatives_match_autograd(name, twin):
    function = getattr(ch04, name, None) or getattr(ch05, name)  # relu and sigmoid are Chapter 4's
    x = np.concatenate([np.linspace(-30, 30, 601), RNG.normal(size=100)])
    x = x[np.abs(x) > 1e-9]  # ReLU has no derivative at exactly 0
    xt = t(x).requires_grad_()
    yt = twin(xt)
    yt.sum().backward()
    np.testing.assert_allclose(function(x), yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(getattr(ch05, name + "_grad")(x), xt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_log_softmax_is_stable_and_matches_torch():
    z = RNG.normal(size=(5, 10)) * 50
    z[0] += 1000  # the naive formula overflows here
    np.testing.assert_allclose(ch05.log_softmax(z), torch.log_softmax(t(z), -1).numpy(), rtol=1e-12)
    assert np.isfinite(ch05.log_softmax(z)).all()
    np.testing.assert_allclose(np.exp(ch05.log_softmax(z, axis=0)).sum(axis=0), 1.0)


def test_losses_and_gradients_match_torch():
    logits, labels = RNG.normal(size=(8, 10)) * 3, RNG.integers(0, 10, 8)
    lt = t(logits).requires_grad_()
    loss = torch.nn.functional.cross_entropy(lt, torch.from_numpy(labels))
    loss.backward()
    assert ch05.cross_entropy(logits, labels) == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(ch05.cross_entropy_grad(logits, labels), lt.grad.numpy(), atol=1e-14)

    pred, target = RNG.normal(size=(8, 3)), RNG.normal(size=(8, 3))
    pt = t(pred).requires_grad_()
    loss = torch.nn.functional.mse_loss(pt, t(target))
    loss.backward()
    assert ch05.mse(pred, target) == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(ch05.mse_grad(pred, target), pt.grad.numpy(), atol=1e-14)

    logits, targets = RNG.normal(size=20) * 40, RNG.integers(0, 2, 20).astype(float)
    lt = t(logits).requires_grad_()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(lt, t(targets))
    loss.backward()
    assert ch05.binary_cross_entropy(logits, targets) == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(ch05.binary_cross_entropy_grad(logits, targets), lt.grad.numpy(), atol=1e-14)
    assert ch05.one_hot(np.array([2, 0]), 3).tolist() == [[0, 0, 1], [1, 0, 0]]


def test_keras_losses_agree():
    k = keras()
    logits, labels = RNG.normal(size=(8, 10)), RNG.integers(0, 10, 8)
    ce = k.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits.astype(np.float32))
    assert ch05.cross_entropy(logits, labels) == pytest.approx(float(ce), rel=1e-5)
    pred, target = RNG.normal(size=(8, 3)), RNG.normal(size=(8, 3))
    assert ch05.mse(pred, target) == pytest.approx(float(k.losses.MeanSquaredError()(target, pred)), rel=1e-5)


def test_chapter4_mlp_loss_and_first_gradient_are_chapter5_cross_entropy():
    params = ch04.init_mlp([6, 5, 3], seed=4, dtype=np.float64)
    params[-2] *= 300  # logits hundreds apart: the naive log(softmax) would be -inf
    x, y = RNG.normal(size=(16, 6)), RNG.integers(0, 3, 16)
    logits, cache = ch04.mlp_forward(params, x)
    loss, grads = ch04.mlp_loss_and_grads(params, x, y)
    assert loss == pytest.approx(ch05.cross_entropy(logits, y), rel=1e-12) and loss > 10
    expected = ch04.mlp_backward(params, cache, ch05.cross_entropy_grad(logits, y))
    for mine, theirs in zip(grads, expected, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-15)


def test_gradient_check_agrees_with_backprop_and_catches_a_wrong_gradient():
    params = ch04.init_mlp([6, 5, 3], seed=2, dtype=np.float64)
    x, y = RNG.normal(size=(4, 6)), RNG.integers(0, 3, 4)
    _, grads = ch04.mlp_loss_and_grads(params, x, y)
    for p, g in zip(params, grads, strict=True):
        numeric = ch05.numerical_gradient(lambda: ch04.mlp_loss_and_grads(params, x, y)[0], p)
        assert ch05.relative_error(numeric, g) < 1e-7
    assert ch05.relative_error(numeric, 1.1 * g) > 0.04  # a 10% error is seen
    assert ch05.relative_error(np.zeros(3), np.zeros(3)) == 0.0


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
    (lambda p: ch05.SGD(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    (lambda p: ch05.SGD(p, lr=0.05, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    (lambda p: ch05.RMSProp(p, lr=0.01), lambda p: torch.optim.RMSprop(p, lr=0.01)),
    (lambda p: ch05.Adam(p, lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
])
def test_optimizers_match_torch_step_for_step(ours, theirs):
    params = ch04.init_mlp([6, 5, 3], seed=3, dtype=np.float64)
    x, y = RNG.normal(size=(16, 6)), RNG.integers(0, 3, 16)

    def grad_fn(ps):
        return ch04.mlp_loss_and_grads(ps, x, y)[1]

    expected = run_torch_optimizer(theirs, params, grad_fn, steps=25)
    start = [p.copy() for p in params]
    opt = ours(params)
    for _ in range(25):
        opt.step(grad_fn(params))
    for mine, other, before in zip(params, expected, start, strict=True):
        np.testing.assert_allclose(mine, other, rtol=1e-10, atol=1e-12)
        assert not np.allclose(mine, before)  # the parameters really moved
