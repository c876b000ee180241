"""The code Chapter 5 teaches, saved for later chapters (第5章 数学基础).

Generated from notebooks/ch05_math.ipynb (its cells tagged `save`) by scripts/save_helpers.py.
Do not edit: change the notebook, then run `make helpers`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.special import erf

from helpers.saved.ch04 import sigmoid, softmax


def numerical_gradient(f: Callable[[], float], param: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central-difference estimate of df/dparam; f reads `param`, which is nudged in place and restored."""
    grad = np.zeros_like(param, dtype=np.float64)
    flat, gflat = param.reshape(-1), grad.reshape(-1)  # views onto param and grad, one index per weight
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        f_plus = f()
        flat[i] = old - eps
        f_minus = f()
        flat[i] = old  # restore the weight before the next one
        gflat[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """‖a − b‖ / (‖a‖ + ‖b‖): 0 for equal arrays, about 1 for unrelated ones; scale-free."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    denominator = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / denominator) if denominator > 0 else 0.0


def relu_grad(x: np.ndarray) -> np.ndarray:
    """dReLU/dx: 1 where x > 0, else 0 (also at exactly 0, as PyTorch does)."""
    return (x > 0).astype(x.dtype)


def sigmoid_grad(x: np.ndarray) -> np.ndarray:
    """dσ/dx = σ(x)(1 − σ(x))."""
    s = sigmoid(x)
    return s * (1 - s)


def tanh(x: np.ndarray) -> np.ndarray:
    """The hyperbolic tangent (e^x − e^-x) / (e^x + e^-x)."""
    return np.tanh(x)


def tanh_grad(x: np.ndarray) -> np.ndarray:
    """dtanh/dx = 1 − tanh(x)²."""
    return 1 - np.tanh(x) ** 2


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU, exact form: x·Φ(x) with Φ the standard normal CDF (PyTorch's and Keras' default)."""
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


def gelu_grad(x: np.ndarray) -> np.ndarray:
    """dGELU/dx = Φ(x) + x·φ(x), φ the standard normal density."""
    return 0.5 * (1 + erf(x / math.sqrt(2))) + x * np.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)


def log_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(softmax(z)) along `axis` without ever taking the log of 0: z − max − log Σ exp(z − max)."""
    shifted = z - z.max(axis=axis, keepdims=True)  # every exponent ≤ 0: no overflow, and the sum is ≥ 1
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def one_hot(labels: np.ndarray, n_classes: int = 10, dtype=np.float32) -> np.ndarray:
    """Integer labels (N,) to one-hot rows (N, n_classes)."""
    out = np.zeros((len(labels), n_classes), dtype=dtype)
    out[np.arange(len(labels)), labels] = 1
    return out


def mse(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean squared error over every element (torch.nn.MSELoss, keras.losses.MeanSquaredError)."""
    return float(np.mean((pred - target) ** 2))


def mse_grad(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """d mse / d pred = 2 (pred − target) / number of elements."""
    return 2 * (pred - target) / pred.size


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of integer labels (N,) under softmax(logits (N, classes)) (torch CrossEntropyLoss)."""
    return float(-np.mean(log_softmax(logits)[np.arange(len(labels)), labels]))


def cross_entropy_grad(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """d cross_entropy / d logits = (softmax(logits) − one_hot(labels)) / N."""
    grad = softmax(logits)
    grad[np.arange(len(labels)), labels] -= 1
    return grad / len(labels)


def binary_cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean log loss of 0/1 targets under sigmoid(logits), stable for any logit (torch BCEWithLogitsLoss)."""
    # −[y log σ(z) + (1 − y) log(1 − σ(z))] rewritten as max(z, 0) − z·y + log(1 + e^−|z|): no exp overflows
    return float(np.mean(np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))))


def binary_cross_entropy_grad(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """d binary_cross_entropy / d logits = (sigmoid(logits) − targets) / N."""
    return (sigmoid(logits) - targets) / logits.size


class SGD:
    """(Stochastic) gradient descent, optionally with momentum: v = μ·v + g; p −= lr·v (torch.optim.SGD).

    Gradient descent (GD) and SGD share this rule; they differ in the data each gradient is computed on
    (the whole training set or a mini-batch).
    """

    def __init__(self, params: list[np.ndarray], lr: float = 0.01, momentum: float = 0.0):
        self.params, self.lr, self.momentum = params, lr, momentum
        self.velocity = [np.zeros_like(p) for p in params]  # v, one array per parameter

    def step(self, grads: list[np.ndarray]) -> None:
        """Update every parameter in place from its gradient."""
        for p, g, v in zip(self.params, grads, self.velocity, strict=True):
            if self.momentum:
                v *= self.momentum
                v += g
                g = v
            p -= self.lr * g


class RMSProp:
    """RMSProp: s = α·s + (1 − α)·g²; p −= lr·g / (√s + ε) (torch.optim.RMSprop's defaults α=0.99, ε=1e-8)."""

    def __init__(self, params: list[np.ndarray], lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8):
        self.params, self.lr, self.alpha, self.eps = params, lr, alpha, eps
        self.square_avg = [np.zeros_like(p) for p in params]  # s: the recent size of each gradient coordinate

    def step(self, grads: list[np.ndarray]) -> None:
        """Update every parameter in place from its gradient."""
        for p, g, s in zip(self.params, grads, self.square_avg, strict=True):
            s *= self.alpha
            s += (1 - self.alpha) * g * g
            p -= self.lr * g / (np.sqrt(s) + self.eps)


class Adam:
    """Adam: moving averages of g and g², bias-corrected; p −= lr·m̂ / (√v̂ + ε) (torch.optim.Adam)."""

    def __init__(self, params: list[np.ndarray], lr: float = 0.001, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = [np.zeros_like(p) for p in params]  # average gradient
        self.v = [np.zeros_like(p) for p in params]  # average squared gradient
        self.t = 0  # steps taken, for the bias correction

    def step(self, grads: list[np.ndarray]) -> None:
        """Update every parameter in place from its gradient."""
        self.t += 1
        b1, b2 = self.betas
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            m_hat = m / (1 - b1**self.t)  # bias correction: m and v start at 0
            v_hat = v / (1 - b2**self.t)
            p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
