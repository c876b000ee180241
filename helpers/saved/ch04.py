"""The code Chapter 4 teaches, saved for later chapters (第4章 基础算法原理).

Generated from notebooks/ch04_algorithms.ipynb (its cells tagged `save`) by scripts/save_helpers.py.
Do not edit: change the notebook, then run `make helpers`.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def relu(x: np.ndarray) -> np.ndarray:
    """ReLU: max(x, 0), elementwise."""
    return np.maximum(x, 0)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function 1 / (1 + e^-x), computed without overflow for large |x|."""
    e = np.exp(-np.abs(x))  # at most 1: e^-x itself would overflow for x < -709
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))  # the same value, written for each sign of x


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """Probabilities from logits along `axis`: exp(z_k) / Σ_j exp(z_j)."""
    # Subtracting the largest logit changes nothing but keeps exp() from overflowing; Chapter 5 explains why.
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def init_mlp(sizes: list[int], seed: int = 0, dtype=np.float32) -> list[np.ndarray]:
    """Random weights and zero biases [W1, b1, W2, b2, …] for layer sizes such as [784, 128, 10]."""
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        # W: (inputs, outputs), so a layer is x @ W + b (Keras' layout; PyTorch's Linear stores W.T).
        # Spread √(2 / inputs) (He et al., 2015) keeps the size of ReLU activations the same from layer to layer.
        params.append(rng.normal(0.0, np.sqrt(2.0 / n_in), (n_in, n_out)).astype(dtype))
        params.append(np.zeros(n_out, dtype=dtype))
    return params


def mlp_forward(params: list[np.ndarray], x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Logits (N, classes) of an MLP with ReLU hidden layers, and the cache backward needs: [input, z] per layer."""
    cache = []
    h = x  # (N, inputs)
    n_layers = len(params) // 2
    for i in range(n_layers):
        z = h @ params[2 * i] + params[2 * i + 1]  # (N, outputs of layer i)
        cache += [h, z]
        h = relu(z) if i < n_layers - 1 else z  # no ReLU on the logits
    return h, cache


def mlp_backward(params: list[np.ndarray], cache: list[np.ndarray], dlogits: np.ndarray) -> list[np.ndarray]:
    """Gradients [dW1, db1, …] of a loss, given dL/dlogits (N, classes): the chain rule, layer by layer."""
    grads: list[np.ndarray] = [np.empty(0)] * len(params)
    dz = dlogits
    for i in reversed(range(len(params) // 2)):
        h_in = cache[2 * i]  # the layer's input (N, inputs)
        grads[2 * i] = h_in.T @ dz  # dL/dW = input^T · dL/dz, the shape of W
        grads[2 * i + 1] = dz.sum(axis=0)  # dL/db = Σ over the batch of dL/dz
        if i > 0:
            dh = dz @ params[2 * i].T  # dL/d(input) = dL/dz · W^T
            dz = dh * (cache[2 * i - 1] > 0)  # the ReLU below passes the gradient where it was active
    return grads


def mlp_loss_and_grads(params: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
    """Mean cross-entropy of integer labels y (N,) and its gradient with respect to every parameter."""
    logits, cache = mlp_forward(params, x)
    rows = np.arange(len(y))
    shifted = logits - logits.max(axis=1, keepdims=True)
    # −log softmax(z)_y = log Σ_j exp(z_j − max) − (z_y − max): the same number, without log(0) (Chapter 5)
    loss = np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[rows, y])
    dlogits = softmax(logits)
    dlogits[rows, y] -= 1  # dL/dz = softmax(z) − one_hot(y) ...
    dlogits /= len(y)  # ... averaged over the batch
    return float(loss), mlp_backward(params, cache, dlogits)


def mlp_predict(params: list[np.ndarray], x: np.ndarray, batch_size: int = 10_000) -> np.ndarray:
    """Predicted class of each row of x, batch_size rows at a time (to bound memory)."""
    return np.concatenate([mlp_forward(params, x[i:i + batch_size])[0].argmax(axis=1)
                           for i in range(0, len(x), batch_size)])


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: int = 1,
           padding: int = 0) -> np.ndarray:
    """2-D convolution as deep learning defines it (cross-correlation), like torch.nn.functional.conv2d.

    x: (N, C, H, W) images; w: (F, C, kh, kw) filters; b: (F,) biases. Returns (N, F, H', W').
    """
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))  # zeros around each image
    kh, kw = w.shape[2:]
    windows = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]  # (N, C, H', W', kh, kw)
    out = np.einsum("nchwij,fcij->nfhw", windows, w, optimize=True)  # Σ over channels and window, per filter
    return out if b is None else out + b[None, :, None, None]


def max_pool2d(x: np.ndarray, size: int = 2, stride: int | None = None) -> np.ndarray:
    """Max pooling over size×size windows of (N, C, H, W), like torch.nn.functional.max_pool2d."""
    stride = stride or size  # by default the windows do not overlap
    windows = sliding_window_view(x, (size, size), axis=(2, 3))[:, :, ::stride, ::stride]  # (N, C, H', W', s, s)
    return windows.max(axis=(-2, -1))


def rnn_cell(x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray,
             b_hh: np.ndarray) -> np.ndarray:
    """One step of an Elman RNN: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh), as torch.nn.RNN computes it.

    x: (N, inputs) this step's input; h: (N, hidden) the previous state. Returns the new state (N, hidden).
    """
    return np.tanh(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh)


def rnn_forward(xs: np.ndarray, h0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray,
                b_hh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run rnn_cell over sequences xs (N, T, inputs): every hidden state (N, T, hidden) and the last (N, hidden)."""
    h, outputs = h0, []
    for t in range(xs.shape[1]):
        h = rnn_cell(xs[:, t], h, w_ih, w_hh, b_ih, b_hh)  # the same weights at every step
        outputs.append(h)
    return np.stack(outputs, axis=1), h


def lstm_cell(x: np.ndarray, h: np.ndarray, c: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray,
              b_hh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM step with gates in PyTorch's (and Keras') order input, forget, cell candidate, output.

    x: (N, inputs); h, c: (N, hidden); w_ih: (4·hidden, inputs); w_hh: (4·hidden, hidden). Returns the new (h, c).
    """
    gates = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh  # (N, 4·hidden): the four gates' sums side by side
    i, f, g, o = np.split(gates, 4, axis=-1)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)  # forget some of the old memory, write some new
    h = sigmoid(o) * np.tanh(c)  # expose part of the memory as the hidden state
    return h, c


def lstm_forward(xs: np.ndarray, h0: np.ndarray, c0: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                 b_ih: np.ndarray, b_hh: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Run lstm_cell over xs (N, T, inputs): every hidden state (N, T, hidden) and the last (h, c)."""
    h, c, outputs = h0, c0, []
    for t in range(xs.shape[1]):
        h, c = lstm_cell(xs[:, t], h, c, w_ih, w_hh, b_ih, b_hh)
        outputs.append(h)
    return np.stack(outputs, axis=1), (h, c)
