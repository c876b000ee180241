"""The Keras twins of the course's PyTorch networks (helpers.torch_models): each takes normalised images
(N, 28, 28, 1) and returns class probabilities (softmax), as Keras' own examples do. Importing this module imports
TensorFlow and Keras (quietly).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from .cache import cached
from .core import quiet_tensorflow
from .data import BACKGROUND

quiet_tensorflow()
import keras  # noqa: E402
from keras import layers, ops  # noqa: E402


def keras_mlp(hidden: tuple[int, ...] = (512, 256), dropout: float = 0.2) -> keras.Sequential:
    """The Keras twin of torch_mlp: Flatten, Dense-ReLU-Dropout per hidden layer, Dense(10, softmax)."""
    stack = [keras.Input((28, 28, 1)), layers.Flatten()]
    for h in hidden:
        stack += [layers.Dense(h, activation="relu"), layers.Dropout(dropout)]
    return keras.Sequential(stack + [layers.Dense(10, activation="softmax")], name="mlp")


@keras.saving.register_keras_serializable(package="helpers")
class RandomAffine(layers.Layer):
    """Random rotation (±degrees), zoom (±scale) and shift (±shift pixels) of (N, H, W, C) images, in training only:
    what helpers.train.random_affine does for PyTorch, in one resampling."""

    def __init__(self, degrees: float = 10.0, shift: float = 2.0, scale: float = 0.1, fill: float = BACKGROUND,
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.degrees, self.shift, self.scale, self.fill, self.seed = degrees, shift, scale, fill, seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        n, h, w = ops.shape(images)[0], ops.shape(images)[1], ops.shape(images)[2]
        u = keras.random.uniform((n, 4), -1.0, 1.0, seed=self.generator)
        angle = u[:, 0] * math.radians(self.degrees)
        zoom = 1.0 + u[:, 1] * self.scale
        dx, dy = u[:, 2] * self.shift, u[:, 3] * self.shift
        cos, sin = ops.cos(angle) / zoom, ops.sin(angle) / zoom
        cx, cy = (ops.cast(w, "float32") - 1) / 2, (ops.cast(h, "float32") - 1) / 2
        # output pixel (x, y) reads input pixel A (x - c) + c + d, A = rotation / zoom
        zeros = ops.zeros_like(cos)
        transform = ops.stack([cos, -sin, cx - cos * cx + sin * cy + dx,
                               sin, cos, cy - sin * cx - cos * cy + dy, zeros, zeros], axis=1)
        return ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode="constant",
                                          fill_value=self.fill)

    def get_config(self) -> dict:
        return {**super().get_config(), "degrees": self.degrees, "shift": self.shift, "scale": self.scale,
                "fill": self.fill, "seed": self.seed}


def keras_cnn(width: int = 16, dropout: float = 0.1, augment: bool = False) -> keras.Sequential:
    """The Keras twin of torch_cnn (BatchNorm momentum/epsilon as PyTorch's); augment=True adds RandomAffine."""

    def block(filters: int) -> list:
        return [layers.Conv2D(filters, 3, padding="same", use_bias=False),
                layers.BatchNormalization(momentum=0.9, epsilon=1e-5), layers.ReLU()]

    w = width
    stack = [keras.Input((28, 28, 1))] + ([RandomAffine()] if augment else [])
    stack += block(w) + [layers.MaxPooling2D()] + block(2 * w) + block(2 * w) + [layers.MaxPooling2D()]
    stack += block(4 * w) + block(4 * w) + [layers.Flatten(), layers.Dropout(dropout),
                                            layers.Dense(10, activation="softmax")]
    return keras.Sequential(stack, name="cnn")


def keras_lstm(hidden: int = 128) -> keras.Sequential:
    """The Keras twin of torch_lstm: the 28 rows as a sequence, LSTM, Dense(10, softmax) on the last state."""
    return keras.Sequential([keras.Input((28, 28, 1)), layers.Reshape((28, 28)), layers.LSTM(hidden),
                             layers.Dense(10, activation="softmax")], name="lstm")


def keras_official_cnn() -> keras.Sequential:
    """The network of the Keras example "Simple MNIST convnet" (keras.io/examples/vision/mnist_convnet)."""
    return keras.Sequential([
        keras.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2), layers.Flatten(), layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ], name="keras_example_convnet")


def _save_keras(model: keras.Model, path: Path) -> None:
    """model.save to a temporary name, then rename: a half-written .keras file never appears."""
    temporary = path.with_name(f".{path.stem}.part.keras")
    model.save(temporary)
    os.replace(temporary, path)


def cached_keras(name: str, key: dict, build: Callable[[], keras.Model], fit: Callable[[keras.Model], dict],
                 retrain: bool = False, keep: Sequence[Path] = ()) -> tuple[keras.Model, dict]:
    """A Keras model trained once by `fit(build())`, then loaded: data/models/NAME-<key hash>.keras and a .json
    record (helpers.cache); `keep`: files the training writes (e.g. a ModelCheckpoint file), cached and restored."""
    return cached(name, key, build, fit, _save_keras, keras.models.load_model, ".keras", retrain, keep)
