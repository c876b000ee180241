"""The code Chapter 10 teaches, saved for later chapters (第10章 大模型应用扩展).

Generated from notebooks/ch10_applications.ipynb (its cells tagged `save`) by scripts/save_helpers.py.
Do not edit: change the notebook, then run `make helpers`.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray,
              mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """softmax(q kᵀ / √d_k) v over the last two axes (d_k: q's last axis), and the weights; mask True = allowed."""
    scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)  # exp(-inf) = 0: masked positions get no weight
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return weights @ v, weights


def causal_mask(n: int) -> np.ndarray:
    """(n, n) mask that lets position i look at positions 0..i only (True = allowed)."""
    return np.tril(np.ones((n, n), bool))


def multi_head_attention(x: np.ndarray, in_w: np.ndarray, in_b: np.ndarray, out_w: np.ndarray, out_b: np.ndarray,
                         heads: int, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Multi-head self-attention of x (N, T, d) -> (output (N, T, d), weights (N, heads, T, T)); in_w (3d, d)."""
    n, t, d = x.shape
    q, k, v = np.split(x @ in_w.T + in_b, 3, axis=-1)  # in_w stacks the query, key and value maps: each (N, T, d)

    def split(a: np.ndarray) -> np.ndarray:  # (N, T, d) -> (N, heads, T, d / heads)
        return a.reshape(n, t, heads, d // heads).transpose(0, 2, 1, 3)

    out, weights = attention(split(q), split(k), split(v), mask)
    return out.transpose(0, 2, 1, 3).reshape(n, t, d) @ out_w.T + out_b, weights  # heads side by side, mixed


class SelfAttention(nn.Module):
    """Multi-head self-attention written out: q/k/v maps, scaled dot products per head, heads merged, output map."""

    def __init__(self, dim: int, heads: int, causal: bool = False, dropout: float = 0.0):
        super().__init__()
        self.heads, self.causal, self.dropout = heads, causal, dropout
        self.qkv = nn.Linear(dim, 3 * dim)  # the query, key and value maps in one matrix (in_proj in PyTorch)
        self.out = nn.Linear(dim, dim)  # mixes the heads' outputs (out_proj)
        self.last_weights = None  # attention weights (N, heads, T, T) of the latest call, kept for plots

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = (a.reshape(n, t, self.heads, d // self.heads).transpose(1, 2)  # (N, heads, T, d / heads)
                   for a in self.qkv(x).chunk(3, dim=-1))
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)  # (N, heads, T, T)
        if self.causal:  # position i may look at positions 0..i only
            scores = scores.masked_fill(torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1), -math.inf)
        weights = scores.softmax(-1)
        self.last_weights = weights.detach()
        out = F.dropout(weights, self.dropout, self.training) @ v  # (N, heads, T, d / heads)
        return self.out(out.transpose(1, 2).reshape(n, t, d))  # heads side by side again, then mixed


def sinusoidal_positions(n: int, d: int) -> np.ndarray:
    """The fixed position encodings of Vaswani et al. (2017), (n, d): sin on even features, cos on odd ones."""
    pos = np.arange(n)[:, None]
    freq = np.exp(-math.log(10000.0) * np.arange(0, d, 2) / d)  # wavelengths from 2π to 10000·2π
    out = np.zeros((n, d))
    out[:, 0::2] = np.sin(pos * freq)
    out[:, 1::2] = np.cos(pos * freq[: d // 2])
    return out


def patchify(images: np.ndarray, patch: int = 7) -> np.ndarray:
    """Cut images (N, H, W) into non-overlapping patches, row by row: (N, (H/p)·(W/p), p·p)."""
    n, h, w = images.shape
    grid = images.reshape(n, h // patch, patch, w // patch, patch).transpose(0, 1, 3, 2, 4)  # (N, rows, cols, p, p)
    return grid.reshape(n, (h // patch) * (w // patch), patch * patch)


class Block(nn.Module):
    """A pre-norm Transformer block (GPT-2, ViT): x + attention(LayerNorm(x)), then x + MLP(LayerNorm(x))."""

    def __init__(self, dim: int, heads: int, mlp: int, causal: bool = False, dropout: float = 0.0):
        super().__init__()
        self.norm1, self.attention = nn.LayerNorm(dim), SelfAttention(dim, heads, causal, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp), nn.GELU(), nn.Linear(mlp, dim))  # each token on its own
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attention(self.norm1(x)))  # tokens gather information from each other
        return x + self.dropout(self.mlp(self.norm2(x)))  # then each token is transformed on its own


class TinyViT(nn.Module):
    """Patches -> linear embedding + learned positions -> pre-norm blocks -> LayerNorm, mean over tokens -> logits."""

    def __init__(self, patch: int = 7, dim: int = 64, depth: int = 4, heads: int = 4, mlp: int = 128,
                 dropout: float = 0.0, image: int = 28, classes: int = 10):
        super().__init__()
        self.patch, self.tokens = patch, (image // patch) ** 2
        self.embed = nn.Linear(patch * patch, dim)  # one patch of p·p pixels -> one token
        self.positions = nn.Parameter(torch.randn(1, self.tokens, dim) * 0.02)  # learned, one vector per patch
        self.blocks = nn.Sequential(*[Block(dim, heads, mlp, dropout=dropout) for _ in range(depth)])
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape  # (N, 1, H, W) normalised images
        p = self.patch
        patches = x.reshape(n, h // p, p, w // p, p).permute(0, 1, 3, 2, 4).reshape(n, self.tokens, p * p)
        tokens = self.blocks(self.embed(patches) + self.positions)  # (N, tokens, dim)
        return self.head(self.norm(tokens).mean(dim=1))  # (N, classes)


def torch_vit(patch: int = 7, dim: int = 64, depth: int = 4, heads: int = 4, mlp: int = 128,
              dropout: float = 0.0) -> TinyViT:
    """A small Vision Transformer for normalised (N, 1, 28, 28) images -> logits (N, 10); 16 patches of 7×7."""
    return TinyViT(patch, dim, depth, heads, mlp, dropout)


@keras.saving.register_keras_serializable(package="ch10")
class AddPositions(keras.layers.Layer):
    """x + a learned (tokens, dim) position table, initialised like TinyViT's (normal, standard deviation 0.02)."""

    def __init__(self, tokens: int, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.tokens, self.dim = tokens, dim
        self.table = self.add_weight(shape=(1, tokens, dim), name="positions",
                                     initializer=keras.initializers.RandomNormal(stddev=0.02))

    def call(self, x):
        return x + self.table

    def get_config(self) -> dict:
        return {**super().get_config(), "tokens": self.tokens, "dim": self.dim}


def keras_vit(patch: int = 7, dim: int = 64, depth: int = 4, heads: int = 4, mlp: int = 128,
              dropout: float = 0.0) -> keras.Model:
    """The Keras twin of torch_vit: (N, 28, 28, 1) normalised images -> class probabilities (N, 10)."""
    layers, side = keras.layers, 28 // patch
    inputs = keras.Input((28, 28, 1))
    x = layers.Reshape((side, patch, side, patch))(inputs)
    x = layers.Permute((1, 3, 2, 4))(x)  # (patch row, patch column, pixel row, pixel column), as TinyViT
    x = layers.Reshape((side * side, patch * patch))(x)
    x = AddPositions(side * side, dim)(layers.Dense(dim)(x))
    for _ in range(depth):  # pre-norm blocks, as Block
        h = layers.LayerNormalization(epsilon=1e-5)(x)  # PyTorch's epsilon
        x = x + layers.Dropout(dropout)(layers.MultiHeadAttention(heads, dim // heads, dropout=dropout)(h, h))
        h = layers.Dense(mlp, activation="gelu")(layers.LayerNormalization(epsilon=1e-5)(x))
        x = x + layers.Dropout(dropout)(layers.Dense(dim)(h))
    x = layers.GlobalAveragePooling1D()(layers.LayerNormalization(epsilon=1e-5)(x))
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(x), name="tiny_vit")


class TinyGPT(nn.Module):
    """A decoder-only Transformer: token + position embeddings -> causal blocks -> LayerNorm -> next-token logits."""

    def __init__(self, vocab: int, context: int, dim: int = 64, depth: int = 2, heads: int = 4, mlp: int = 256,
                 dropout: float = 0.0):
        super().__init__()
        self.context = context
        self.tokens, self.positions = nn.Embedding(vocab, dim), nn.Embedding(context, dim)
        self.blocks = nn.Sequential(*[Block(dim, heads, mlp, causal=True, dropout=dropout) for _ in range(depth)])
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.tokens(ids) + self.positions(torch.arange(ids.shape[1], device=ids.device))  # (N, T, dim)
        return self.head(self.norm(self.blocks(x)))  # (N, T, vocab): position t predicts token t + 1

    @torch.no_grad()
    def generate(self, ids: torch.Tensor, steps: int) -> torch.Tensor:
        """Append `steps` tokens to ids (N, T), each the most likely next token (greedy decoding)."""
        self.eval()
        for _ in range(steps):
            logits = self(ids[:, -self.context:])
            ids = torch.cat([ids, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
        return ids


def torch_gpt(vocab: int, context: int, dim: int = 64, depth: int = 2, heads: int = 4, mlp: int = 256,
              dropout: float = 0.0) -> TinyGPT:
    """A character-level GPT: ids (N, T) -> next-token logits (N, T, vocab); .generate() continues a prompt."""
    return TinyGPT(vocab, context, dim, depth, heads, mlp, dropout)
