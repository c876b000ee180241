"""Deep learning from scratch in NumPy: activations, losses, an MLP with backpropagation, convolution and pooling,
RNN and LSTM cells, and optimizers.

Chapters 4 and 5 build each piece in front of the reader; this module keeps the tested versions that later
chapters import. Every function here is checked against its PyTorch or Keras twin in tests/test_scratch.py.
Only NumPy is imported (SciPy's `erf` lazily for GELU): no deep-learning framework is needed to use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# ---------------------------------------------------------------- activations and their derivatives


def relu(x: np.ndarray) -> np.ndarray:
    """ReLU: max(x, 0)."""
    return np.maximum(x, 0)


def relu_grad(x: np.ndarray) -> np.ndarray:
    """dReLU/dx: 1 where x > 0, else 0 (the value PyTorch uses at exactly 0)."""
    return (x > 0).astype(x.dtype)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function 1 / (1 + e^-x), computed without overflow for large |x|."""
    e = np.exp(-np.abs(x))  # never larger than 1
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_grad(x: np.ndarray) -> np.ndarray:
    """dσ/dx = σ(x)(1 − σ(x))."""
    s = sigmoid(x)
    return s * (1 - s)


def tanh(x: np.ndarray) -> np.ndarray:
    """The hyperbolic tangent."""
    return np.tanh(x)


def tanh_grad(x: np.ndarray) -> np.ndarray:
    """dtanh/dx = 1 − tanh(x)²."""
    return 1 - np.tanh(x) ** 2


def _erf(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf  # SciPy is part of the course environment; NumPy has no erf

    return erf(x)


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU, exact form: x·Φ(x) with Φ the standard normal CDF (PyTorch's and Keras' default)."""
    return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


def gelu_grad(x: np.ndarray) -> np.ndarray:
    """dGELU/dx = Φ(x) + x·φ(x), φ the standard normal density."""
    return 0.5 * (1 + _erf(x / math.sqrt(2))) + x * np.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along `axis`, stable for any logits: subtracting the maximum changes nothing but avoids overflow."""
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(softmax(z)) without ever taking the log of 0: z − max − log Σ exp(z − max)."""
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


# ---------------------------------------------------------------- losses and their gradients


def one_hot(labels: np.ndarray, n_classes: int = 10, dtype=np.float32) -> np.ndarray:
    """Integer labels (N,) to one-hot rows (N, n_classes)."""
    out = np.zeros((len(labels), n_classes), dtype=dtype)
    out[np.arange(len(labels)), labels] = 1
    return out


def mse(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean squared error over every element (torch.nn.MSELoss, keras.losses.MeanSquaredError)."""
    return float(np.mean((pred - target) ** 2))


def mse_grad(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """d mse / d pred."""
    return 2 * (pred - target) / pred.size


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of integer labels under softmax(logits), from logits (torch.nn.CrossEntropyLoss)."""
    return float(-np.mean(log_softmax(logits)[np.arange(len(labels)), labels]))


def cross_entropy_grad(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """d cross_entropy / d logits = (softmax(logits) − one_hot(labels)) / N."""
    grad = softmax(logits)
    grad[np.arange(len(labels)), labels] -= 1
    return grad / len(labels)


def binary_cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean log loss of 0/1 targets under sigmoid(logits), stable for any logit (torch BCEWithLogitsLoss)."""
    return float(np.mean(np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))))


def binary_cross_entropy_grad(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """d binary_cross_entropy / d logits = (sigmoid(logits) − targets) / N."""
    return (sigmoid(logits) - targets) / logits.size


# ---------------------------------------------------------------- a multilayer perceptron, forward and backward


def init_mlp(sizes: Sequence[int], seed: int = 0, dtype=np.float32) -> list[np.ndarray]:
    """He-initialised weights and zero biases [W1, b1, W2, b2, …] for layer sizes such as [784, 128, 10].

    Each W has shape (inputs, outputs), so a layer is x @ W + b (Keras' kernel layout; PyTorch stores W.T).
    """
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        params.append(rng.normal(0.0, math.sqrt(2.0 / n_in), (n_in, n_out)).astype(dtype))
        params.append(np.zeros(n_out, dtype=dtype))
    return params


def mlp_forward(params: list[np.ndarray], x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Logits of an MLP with ReLU hidden layers, and the cache backward needs (each layer's input and z)."""
    cache = []
    h = x
    n_layers = len(params) // 2
    for i in range(n_layers):
        w, b = params[2 * i], params[2 * i + 1]
        z = h @ w + b
        cache += [h, z]
        h = relu(z) if i < n_layers - 1 else z
    return h, cache


def mlp_backward(params: list[np.ndarray], cache: list[np.ndarray], dlogits: np.ndarray) -> list[np.ndarray]:
    """Gradients [dW1, db1, …] of a loss, given d loss / d logits: the chain rule applied layer by layer."""
    grads: list[np.ndarray] = [np.empty(0)] * len(params)
    dz = dlogits
    for i in reversed(range(len(params) // 2)):
        h_in = cache[2 * i]
        grads[2 * i] = h_in.T @ dz  # dL/dW = input^T · dL/dz
        grads[2 * i + 1] = dz.sum(axis=0)  # dL/db = Σ over the batch of dL/dz
        if i > 0:
            dh = dz @ params[2 * i].T  # dL/d(input) = dL/dz · W^T
            dz = dh * relu_grad(cache[2 * i - 1])  # through the ReLU of the layer below
    return grads


def mlp_loss_and_grads(params: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
    """Mean cross-entropy of integer labels y and its gradient with respect to every parameter."""
    logits, cache = mlp_forward(params, x)
    return cross_entropy(logits, y), mlp_backward(params, cache, cross_entropy_grad(logits, y))


def mlp_predict(params: list[np.ndarray], x: np.ndarray, batch_size: int = 10_000) -> np.ndarray:
    """Predicted class of each row of x."""
    return np.concatenate([mlp_forward(params, x[i:i + batch_size])[0].argmax(axis=1)
                           for i in range(0, len(x), batch_size)])


# ---------------------------------------------------------------- gradient checking


def numerical_gradient(f: Callable[[], float], param: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central-difference estimate of df/dparam; f reads `param`, which is nudged in place and restored."""
    grad = np.zeros_like(param, dtype=np.float64)
    flat, gflat = param.reshape(-1), grad.reshape(-1)  # views onto param and grad
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        f_plus = f()
        flat[i] = old - eps
        f_minus = f()
        flat[i] = old
        gflat[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """‖a − b‖ / (‖a‖ + ‖b‖): 0 for equal arrays, about 1 for unrelated ones; scale-free."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    denominator = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / denominator) if denominator > 0 else 0.0


# ---------------------------------------------------------------- convolution and pooling


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: int = 1,
           padding: int = 0) -> np.ndarray:
    """2-D convolution as deep learning defines it (cross-correlation), like torch.nn.functional.conv2d.

    x: (N, C, H, W) images; w: (F, C, kh, kw) filters; b: (F,) biases. Returns (N, F, H', W').
    """
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    kh, kw = w.shape[2:]
    windows = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]  # (N, C, H', W', kh, kw)
    out = np.einsum("nchwij,fcij->nfhw", windows, w, optimize=True)
    return out if b is None else out + b[None, :, None, None]


def max_pool2d(x: np.ndarray, size: int = 2, stride: int | None = None) -> np.ndarray:
    """Max pooling over size×size windows of (N, C, H, W), like torch.nn.functional.max_pool2d."""
    stride = stride or size
    windows = sliding_window_view(x, (size, size), axis=(2, 3))[:, :, ::stride, ::stride]
    return windows.max(axis=(-2, -1))


# ---------------------------------------------------------------- recurrent cells (PyTorch's weight layout)


def rnn_cell(x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray,
             b_hh: np.ndarray) -> np.ndarray:
    """One step of an Elman RNN: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh), as torch.nn.RNN computes it."""
    return np.tanh(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh)


def rnn_forward(xs: np.ndarray, h0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray,
                b_hh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run rnn_cell over a batch of sequences xs (N, T, D): every hidden state (N, T, H) and the last (N, H)."""
    h, outputs = h0, []
    for t in range(xs.shape[1]):
        h = rnn_cell(xs[:, t], h, w_ih, w_hh, b_ih, b_hh)
        outputs.append(h)
    return np.stack(outputs, axis=1), h


def lstm_cell(x: np.ndarray, h: np.ndarray, c: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray,
              b_hh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM step with gates in PyTorch's (and Keras') order input, forget, cell candidate, output."""
    gates = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    i, f, g, o = np.split(gates, 4, axis=-1)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)  # forget some of the old memory, write some new
    h = sigmoid(o) * np.tanh(c)  # expose part of the memory as the hidden state
    return h, c


def lstm_forward(xs: np.ndarray, h0: np.ndarray, c0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                 b_ih: np.ndarray, b_hh: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Run lstm_cell over xs (N, T, D): every hidden state (N, T, H) and the last (h, c)."""
    h, c, outputs = h0, c0, []
    for t in range(xs.shape[1]):
        h, c = lstm_cell(xs[:, t], h, c, w_ih, w_hh, b_ih, b_hh)
        outputs.append(h)
    return np.stack(outputs, axis=1), (h, c)


# ---------------------------------------------------------------- optimizers (the update rules of torch.optim)


class SGD:
    """(Stochastic) gradient descent, optionally with momentum: v = μ·v + g; p −= lr·v (torch.optim.SGD).

    Gradient descent (GD) and SGD share this rule; they differ in the data each gradient is computed on
    (the whole training set or a mini-batch).
    """

    def __init__(self, params: list[np.ndarray], lr: float = 0.01, momentum: float = 0.0):
        self.params, self.lr, self.momentum = params, lr, momentum
        self.velocity = [np.zeros_like(p) for p in params]

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
        self.square_avg = [np.zeros_like(p) for p in params]

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
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

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
