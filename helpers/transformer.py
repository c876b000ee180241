"""The Transformer at MNIST scale (Chapter 10): attention from scratch in NumPy, with the weight layout of
`torch.nn.MultiheadAttention`, then small models built from it — a Vision Transformer for 28×28 digits
(PyTorch and Keras) and a character-level GPT.

PyTorch and Keras are imported inside the functions, so `import helpers` stays fast.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .scratch import softmax

if TYPE_CHECKING:
    import keras
    from torch import nn


# ---------------------------------------------------------------- NumPy, from scratch


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None = None):
    """Scaled dot-product attention softmax(q kᵀ / √d) v over the last two axes; mask: True where allowed.

    Returns (output, weights); weights[..., i, j] is how much query i looks at key j.
    """
    scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = softmax(scores, axis=-1)
    return weights @ v, weights


def causal_mask(n: int) -> np.ndarray:
    """(n, n) boolean mask that lets position i attend to positions 0..i only (True = allowed)."""
    return np.tril(np.ones((n, n), bool))


def multi_head_attention(query: np.ndarray, key: np.ndarray, value: np.ndarray, in_weight: np.ndarray,
                         in_bias: np.ndarray, out_weight: np.ndarray, out_bias: np.ndarray, heads: int,
                         mask: np.ndarray | None = None):
    """Multi-head attention on (N, T, d) arrays with torch.nn.MultiheadAttention's weights.

    in_weight (3d, d) stacks the query, key and value projections; out_weight (d, d). Returns (output (N, T, d),
    weights (N, heads, T, S)).
    """
    n, t, d = query.shape
    w_q, w_k, w_v = np.split(in_weight, 3)
    b_q, b_k, b_v = np.split(in_bias, 3)

    def split_heads(x: np.ndarray) -> np.ndarray:  # (N, T, d) -> (N, heads, T, d / heads)
        return x.reshape(x.shape[0], x.shape[1], heads, d // heads).transpose(0, 2, 1, 3)

    q, k, v = split_heads(query @ w_q.T + b_q), split_heads(key @ w_k.T + b_k), split_heads(value @ w_v.T + b_v)
    out, weights = attention(q, k, v, mask)
    out = out.transpose(0, 2, 1, 3).reshape(n, t, d)  # concatenate the heads again
    return out @ out_weight.T + out_bias, weights


def sinusoidal_positions(n: int, d: int) -> np.ndarray:
    """The fixed position encodings of Vaswani et al. (2017): sin on even, cos on odd features, (n, d)."""
    pos = np.arange(n)[:, None]
    freq = np.exp(-math.log(10000.0) * np.arange(0, d, 2) / d)
    out = np.zeros((n, d))
    out[:, 0::2] = np.sin(pos * freq)
    out[:, 1::2] = np.cos(pos * freq[: d // 2])
    return out


def patchify(images: np.ndarray, patch: int = 7) -> np.ndarray:
    """Cut images (N, H, W) or (N, 1, H, W) into non-overlapping patches: (N, (H/p)·(W/p), p·p), row by row."""
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[:, 0]
    n, h, w = images.shape
    grid = images.reshape(n, h // patch, patch, w // patch, patch).transpose(0, 1, 3, 2, 4)
    return grid.reshape(n, (h // patch) * (w // patch), patch * patch)


# ---------------------------------------------------------------- PyTorch


def _pre_norm_stack(dim: int, depth: int, heads: int, mlp: int, dropout: float) -> tuple[nn.Module, nn.Module]:
    """`depth` pre-norm Transformer blocks (attention + GELU MLP) and the final LayerNorm, as GPT-2 and ViT use."""
    from torch import nn

    layer = nn.TransformerEncoderLayer(dim, heads, mlp, dropout, activation="gelu", batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, depth, enable_nested_tensor=False), nn.LayerNorm(dim)


def _vit_class():
    import torch
    from torch import nn

    class TinyViT(nn.Module):
        """Patches -> linear embedding + learned positions -> pre-norm Transformer encoder -> mean -> 10 logits."""

        def __init__(self, patch: int = 7, dim: int = 64, depth: int = 4, heads: int = 4, mlp: int = 128,
                     dropout: float = 0.0, image: int = 28, classes: int = 10):
            super().__init__()
            self.patch, self.tokens = patch, (image // patch) ** 2
            self.embed = nn.Linear(patch * patch, dim)
            self.positions = nn.Parameter(torch.randn(1, self.tokens, dim) * 0.02)
            self.encoder, self.norm = _pre_norm_stack(dim, depth, heads, mlp, dropout)
            self.head = nn.Linear(dim, classes)

        def forward(self, x):
            n, _, h, w = x.shape
            p = self.patch
            patches = x.reshape(n, h // p, p, w // p, p).permute(0, 1, 3, 2, 4).reshape(n, self.tokens, p * p)
            tokens = self.encoder(self.embed(patches) + self.positions)
            return self.head(self.norm(tokens).mean(dim=1))

    return TinyViT


def torch_vit(patch: int = 7, dim: int = 64, depth: int = 4, heads: int = 4, mlp: int = 128,
              dropout: float = 0.0) -> nn.Module:
    """A small Vision Transformer for normalised (N, 1, 28, 28) images -> logits (N, 10); 16 patches of 7×7."""
    return _vit_class()(patch, dim, depth, heads, mlp, dropout)


def _gpt_class():
    import torch
    from torch import nn

    class TinyGPT(nn.Module):
        """Token + learned position embeddings -> causal pre-norm Transformer -> next-token logits."""

        def __init__(self, vocab: int, context: int, dim: int = 64, depth: int = 2, heads: int = 4, mlp: int = 256,
                     dropout: float = 0.0):
            super().__init__()
            self.context = context
            self.tokens = nn.Embedding(vocab, dim)
            self.positions = nn.Embedding(context, dim)
            self.blocks, self.norm = _pre_norm_stack(dim, depth, heads, mlp, dropout)
            self.head = nn.Linear(dim, vocab)

        def forward(self, ids):
            t = ids.shape[1]
            x = self.tokens(ids) + self.positions(torch.arange(t, device=ids.device))
            mask = nn.Transformer.generate_square_subsequent_mask(t, device=ids.device)
            return self.head(self.norm(self.blocks(x, mask=mask, is_causal=True)))

        @torch.no_grad()
        def generate(self, ids, steps: int):
            """Append `steps` tokens to ids (N, T), each the most likely next token (greedy decoding)."""
            self.eval()
            for _ in range(steps):
                logits = self(ids[:, -self.context:])
                ids = torch.cat([ids, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
            return ids

    return TinyGPT


def torch_gpt(vocab: int, context: int, dim: int = 64, depth: int = 2, heads: int = 4, mlp: int = 256,
              dropout: float = 0.0) -> nn.Module:
    """A character-level decoder-only Transformer: ids (N, T) -> next-token logits (N, T, vocab); .generate()."""
    return _gpt_class()(vocab, context, dim, depth, heads, mlp, dropout)


# ---------------------------------------------------------------- Keras


def keras_vit(patch: int = 7, dim: int = 64, depth: int = 4, heads: int = 4, mlp: int = 128,
              dropout: float = 0.0) -> keras.Model:
    """The Keras twin of torch_vit: (N, 28, 28, 1) normalised images -> class probabilities (N, 10)."""
    from .core import quiet_tensorflow

    quiet_tensorflow()
    import keras
    from keras import layers, ops

    tokens = (28 // patch) ** 2
    inputs = keras.Input((28, 28, 1))
    x = layers.Reshape((28 // patch, patch, 28 // patch, patch))(inputs)
    x = layers.Permute((1, 3, 2, 4))(x)
    x = layers.Reshape((tokens, patch * patch))(x)
    x = layers.Dense(dim)(x)
    x = _positions_layer(keras)(tokens, dim)(x)
    for _ in range(depth):  # pre-norm blocks, as norm_first=True in PyTorch
        h = layers.LayerNormalization(epsilon=1e-5)(x)
        x = x + layers.MultiHeadAttention(heads, dim // heads, dropout=dropout)(h, h)
        h = layers.LayerNormalization(epsilon=1e-5)(x)
        h = layers.Dense(mlp, activation=lambda t: ops.gelu(t, approximate=False))(h)
        x = x + layers.Dense(dim)(layers.Dropout(dropout)(h))
    x = layers.GlobalAveragePooling1D()(layers.LayerNormalization(epsilon=1e-5)(x))
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(x), name="tiny_vit")


_POSITIONS: dict = {}


def _positions_layer(keras):
    """A Keras layer that adds a learned position embedding (tokens, dim) to its input (defined once)."""
    if "AddPositions" not in _POSITIONS:

        @keras.saving.register_keras_serializable(package="helpers")
        class AddPositions(keras.layers.Layer):
            """x + a learned (tokens, dim) table, initialised like torch_vit's (normal, std 0.02)."""

            def __init__(self, tokens: int, dim: int, **kwargs):
                super().__init__(**kwargs)
                self.tokens, self.dim = tokens, dim
                self.table = self.add_weight(shape=(1, tokens, dim), name="positions",
                                             initializer=keras.initializers.RandomNormal(stddev=0.02))

            def call(self, x):
                return x + self.table

            def get_config(self):
                return {**super().get_config(), "tokens": self.tokens, "dim": self.dim}

        _POSITIONS["AddPositions"] = AddPositions
    return _POSITIONS["AddPositions"]
