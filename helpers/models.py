"""The course's models in PyTorch and Keras (MLP, CNN, LSTM over image rows, the two official reference CNNs)
and the cached "pretrained" Chapter 8 CNN that later chapters start from.

PyTorch and Keras are imported inside the functions, so `import helpers` stays fast. Every PyTorch model takes
normalised images of shape (N, 1, 28, 28) and returns logits (N, 10); every Keras model takes (N, 28, 28, 1)
and returns probabilities (softmax), as Keras' examples do.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core import atomic_file, data_dir, is_quick
from .data import MEAN, STD

if TYPE_CHECKING:
    import keras
    from torch import nn

BACKGROUND = -MEAN / STD  # the value of a black (0) pixel after normalisation


def count_params(model: Any, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of a PyTorch module or a Keras model."""
    if hasattr(model, "count_params"):  # Keras
        weights = model.trainable_weights if trainable_only else model.weights
        return int(sum(int(w.numpy().size) for w in weights))
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# ---------------------------------------------------------------- PyTorch


def torch_mlp(hidden: tuple[int, ...] = (512, 256), dropout: float = 0.2) -> nn.Module:
    """A multilayer perceptron: flatten, then Linear-ReLU-Dropout per hidden layer, then Linear to 10 logits."""
    from torch import nn

    layers: list[nn.Module] = [nn.Flatten()]
    width = 28 * 28
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
        width = h
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


def conv_block(cin: int, cout: int) -> nn.Module:
    """3×3 convolution (no bias), BatchNorm, ReLU: the course CNN's building block; keeps the height and width."""
    from torch import nn

    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _torch_cnn_class():
    from torch import nn

    class CourseCNN(nn.Module):
        """Five 3x3 conv-BatchNorm-ReLU blocks (one at 28x28, two at 14x14, two at 7x7) and one linear layer."""

        def __init__(self, width: int = 16, dropout: float = 0.1):
            super().__init__()
            w = width
            self.features = nn.Sequential(
                conv_block(1, w), nn.MaxPool2d(2),                              # 28x28 -> 14x14
                conv_block(w, 2 * w), conv_block(2 * w, 2 * w), nn.MaxPool2d(2),  # 14x14 -> 7x7
                conv_block(2 * w, 4 * w), conv_block(4 * w, 4 * w),
            )
            self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(4 * w * 7 * 7, 10))

        def forward(self, x):
            return self.classifier(self.features(x))

    return CourseCNN


def torch_cnn(width: int = 16, dropout: float = 0.1) -> nn.Module:
    """The course CNN: `features` (5 conv blocks, 2 max-pools) and `classifier` (dropout, linear); ~0.1 M params."""
    return _torch_cnn_class()(width, dropout)


def _torch_lstm_class():
    from torch import nn

    class RowLSTM(nn.Module):
        """Reads an image as a sequence of 28 rows of 28 pixels; classifies from the last hidden state."""

        def __init__(self, hidden: int = 128, layers: int = 1):
            super().__init__()
            self.lstm = nn.LSTM(28, hidden, num_layers=layers, batch_first=True)
            self.classifier = nn.Linear(hidden, 10)

        def forward(self, x):
            rows = x.reshape(x.shape[0], 28, 28)  # (N, 1, 28, 28) -> (N, time=28 rows, features=28 pixels)
            out, _ = self.lstm(rows)
            return self.classifier(out[:, -1])

    return RowLSTM


def torch_lstm(hidden: int = 128, layers: int = 1) -> nn.Module:
    """An LSTM over the 28 image rows (each a 28-pixel vector), then a linear layer on the last hidden state."""
    return _torch_lstm_class()(hidden, layers)


def torch_official_cnn() -> nn.Module:
    """The network of the official PyTorch MNIST example (pytorch/examples mnist/main.py): 1.2 M parameters."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
        nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10),
    )


# ---------------------------------------------------------------- Keras


def _keras():
    from .core import quiet_tensorflow

    quiet_tensorflow()
    import keras

    return keras


def keras_mlp(hidden: tuple[int, ...] = (512, 256), dropout: float = 0.2) -> keras.Model:
    """The Keras twin of torch_mlp: Flatten, Dense-ReLU-Dropout per hidden layer, Dense(10, softmax)."""
    keras = _keras()
    layers = [keras.Input((28, 28, 1)), keras.layers.Flatten()]
    for h in hidden:
        layers += [keras.layers.Dense(h, activation="relu"), keras.layers.Dropout(dropout)]
    layers.append(keras.layers.Dense(10, activation="softmax"))
    return keras.Sequential(layers, name="mlp")


def keras_augmentation(degrees: float = 10.0, shift: float = 2.0, scale: float = 0.1) -> keras.Sequential:
    """Keras preprocessing layers for random rotation (degrees), shift (pixels) and zoom; active only in training."""
    keras = _keras()
    fill = {"fill_mode": "constant", "fill_value": BACKGROUND, "interpolation": "bilinear"}
    return keras.Sequential([
        keras.layers.RandomRotation(degrees / 360, **fill),
        keras.layers.RandomZoom(scale, **fill),
        keras.layers.RandomTranslation(shift / 28, shift / 28, **fill),
    ], name="augment")


def keras_random_affine(degrees: float = 10.0, shift: float = 2.0, scale: float = 0.1, fill: float = BACKGROUND,
                        seed: int | None = None) -> keras.layers.Layer:
    """One Keras layer doing what helpers.train.random_affine does: rotate, zoom and shift in a single resampling."""
    keras = _keras()
    return _random_affine_class(keras)(degrees, shift, scale, fill, seed)


def _random_affine_class(keras):
    """Define (once) and return the RandomAffine Keras layer class."""
    if "RandomAffine" in _CLASSES:
        return _CLASSES["RandomAffine"]
    ops = keras.ops

    @keras.saving.register_keras_serializable(package="helpers")
    class RandomAffine(keras.layers.Layer):
        """Random rotation (±degrees), zoom (±scale) and shift (±shift pixels) of (N, H, W, C) images in training."""

        def __init__(self, degrees=10.0, shift=2.0, scale=0.1, fill=BACKGROUND, seed=None, **kwargs):
            super().__init__(**kwargs)
            self.degrees, self.shift, self.scale, self.fill, self.seed = degrees, shift, scale, fill, seed
            self.generator = keras.random.SeedGenerator(seed)

        def call(self, images, training=None):
            if not training:
                return images
            n, h, w = ops.shape(images)[0], ops.shape(images)[1], ops.shape(images)[2]
            u = keras.random.uniform((n, 4), -1.0, 1.0, seed=self.generator)
            angle = u[:, 0] * (self.degrees * 3.141592653589793 / 180)
            zoom = 1.0 + u[:, 1] * self.scale
            dx, dy = u[:, 2] * self.shift, u[:, 3] * self.shift
            cos, sin = ops.cos(angle) / zoom, ops.sin(angle) / zoom
            cx, cy = (ops.cast(w, "float32") - 1) / 2, (ops.cast(h, "float32") - 1) / 2
            # output pixel (x, y) reads input pixel A (x - c) + c + d, A = rotation / zoom
            transform = ops.stack([cos, -sin, cx - cos * cx + sin * cy + dx,
                                   sin, cos, cy - sin * cx - cos * cy + dy, ops.zeros_like(cos), ops.zeros_like(cos)],
                                  axis=1)
            return ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode="constant",
                                              fill_value=self.fill)

        def get_config(self):
            return {**super().get_config(), "degrees": self.degrees, "shift": self.shift, "scale": self.scale,
                    "fill": self.fill, "seed": self.seed}

    _CLASSES["RandomAffine"] = RandomAffine
    return RandomAffine


_CLASSES: dict = {}


def keras_cnn(width: int = 16, dropout: float = 0.1, augment: bool = False) -> keras.Model:
    """The Keras twin of torch_cnn (BatchNorm momentum/epsilon as PyTorch's); augment=True adds keras_random_affine."""
    keras = _keras()
    L = keras.layers

    def block(filters: int) -> list:
        return [L.Conv2D(filters, 3, padding="same", use_bias=False), L.BatchNormalization(momentum=0.9, epsilon=1e-5),
                L.ReLU()]

    w = width
    layers = [keras.Input((28, 28, 1))] + ([keras_random_affine()] if augment else [])
    layers += block(w) + [L.MaxPooling2D()] + block(2 * w) + block(2 * w) + [L.MaxPooling2D()]
    layers += block(4 * w) + block(4 * w) + [L.Flatten(), L.Dropout(dropout), L.Dense(10, activation="softmax")]
    return keras.Sequential(layers, name="cnn")


def keras_lstm(hidden: int = 128) -> keras.Model:
    """The Keras twin of torch_lstm: the 28 rows as a sequence, LSTM, Dense(10, softmax) on the last state."""
    keras = _keras()
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Reshape((28, 28)), keras.layers.LSTM(hidden),
                             keras.layers.Dense(10, activation="softmax")], name="lstm")


def keras_official_cnn() -> keras.Model:
    """The network of the Keras example "Simple MNIST convnet" (keras.io/examples/vision/mnist_convnet)."""
    keras = _keras()
    L = keras.layers
    return keras.Sequential([
        keras.Input((28, 28, 1)), L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(2),
        L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(2), L.Flatten(), L.Dropout(0.5),
        L.Dense(10, activation="softmax"),
    ], name="keras_example_convnet")


# ---------------------------------------------------------------- models the course trains once and caches


def _recipe_hash(recipe: dict) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:10]


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cached_path(name: str, recipe: dict) -> Path:
    """Where cached_model keeps a model: data/models/NAME-<recipe hash>.pt (its record: the same name, .json)."""
    return data_dir() / "models" / f"{name}-{_recipe_hash(recipe)}.pt"


def cached_model(name: str, recipe: dict, build: Callable[[], nn.Module], train: Callable[[nn.Module], dict],
                 retrain: bool = False) -> tuple[nn.Module, dict]:
    """A model trained once, then loaded: data/models/NAME-<recipe hash>.pt plus a .json record.

    The record holds the recipe, what `train(model)` returned (e.g. test accuracy) and the file's SHA-256; a
    missing, truncated or altered file, or a different recipe, means the model is trained again. Both files are
    written atomically, so an interrupted run never leaves a half-written model behind.
    """
    import torch

    path = cached_path(name, recipe)
    record_path = path.with_suffix(".json")
    model = build()
    if not retrain and path.exists():
        try:
            record = json.loads(record_path.read_text())
            if record["recipe"] != json.loads(json.dumps(recipe)) or record["sha256"] != _file_sha256(path):
                raise ValueError("checksum or recipe mismatch")
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model.eval(), record
        except Exception as err:  # corrupt, foreign or stale: train again
            print(f"{path.name}: cached model unusable ({type(err).__name__}: {err}); training it again")
            model = build()
    results = train(model)
    with atomic_file(path) as out:
        torch.save(model.state_dict(), out)
    record = {"recipe": recipe, **results, "sha256": _file_sha256(path)}
    with atomic_file(record_path) as out:
        out.write(json.dumps(record, indent=2).encode())
    return model.eval(), record


# ---------------------------------------------------------------- the "pretrained" Chapter 8 CNN

PRETRAINED_NAME = "ch08_cnn"
PRETRAINED_RECIPE = {"width": 16, "dropout": 0.1, "epochs": 15, "batch_size": 128, "max_lr": 3e-3,
                     "weight_decay": 5e-4, "label_smoothing": 0.1, "augment": "rotate 10°, shift 2 px, zoom 10%",
                     "seed": 0}
QUICK_RECIPE = {**PRETRAINED_RECIPE, "epochs": 2}  # quick mode, when the full model is not cached yet
# The same CNN trained to reach 99% as soon as possible (make bench, Chapter 8): smaller batches, a higher peak
# learning rate after a 3% warm-up, and predictions from an exponential moving average of the weights.
FAST_RECIPE = {**PRETRAINED_RECIPE, "batch_size": 64, "max_lr": 5e-3, "warmup": 0.03, "ema": 0.99}


def pretrained_recipe() -> dict:
    """The recipe pretrained_cnn uses now: the full one, or in quick mode the 2-epoch one unless the full is cached."""
    if is_quick() and not cached_path(PRETRAINED_NAME, PRETRAINED_RECIPE).exists():
        return QUICK_RECIPE
    return PRETRAINED_RECIPE


def pretrained_path() -> Path:
    """Where the pretrained Chapter 8 CNN's weights live (data/models/ch08_cnn-<recipe hash>.pt, record .json)."""
    return cached_path(PRETRAINED_NAME, pretrained_recipe())


def train_pretrained_cnn(model: nn.Module, recipe: dict, progress: bool = True) -> dict:
    """Train the Chapter 8 CNN deterministically on all 60,000 training images; return its test results."""
    import numpy as np
    import torch

    from .core import seed_everything
    from .data import load_mnist, torch_loader
    from .train import evaluate, fit, one_cycle, random_affine

    r = recipe
    seed_everything(r["seed"])
    (x_train, y_train), (x_test, y_test) = load_mnist(progress=progress)
    model.load_state_dict(torch_cnn(r["width"], r["dropout"]).state_dict())  # the seeded initial weights
    model.to(memory_format=torch.channels_last)  # faster CPU convolutions
    train = torch_loader(x_train, y_train, batch_size=r["batch_size"], shuffle=True, seed=r["seed"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=r["max_lr"], weight_decay=r["weight_decay"])
    scheduler = one_cycle(optimizer, r["max_lr"], r["epochs"], len(train))
    start = time.perf_counter()
    fit(model, train, epochs=r["epochs"], optimizer=optimizer, scheduler=scheduler, augment=random_affine,
        label_smoothing=r["label_smoothing"], progress=progress)
    seconds = time.perf_counter() - start
    model.to(memory_format=torch.contiguous_format)
    test_loss, test_acc = evaluate(model, torch_loader(x_test, y_test, batch_size=1000))
    return {"test_accuracy": round(test_acc, 6), "test_loss": round(test_loss, 6), "train_seconds": round(seconds, 1),
            "torch": torch.__version__, "numpy": np.__version__}


def pretrained_cnn(retrain: bool = False, progress: bool = True) -> nn.Module:
    """The trained Chapter 8 CNN (eval mode): loaded from data/models/ if intact, else trained and cached first."""
    return pretrained_cnn_with_info(retrain, progress)[0]


def pretrained_cnn_with_info(retrain: bool = False, progress: bool = True) -> tuple[nn.Module, dict]:
    """(model, record): the record holds the recipe, test accuracy, training seconds and the file's SHA-256.

    Full mode trains 15 epochs (99.7%) once; quick mode, with nothing cached, trains a 2-epoch model instead.
    """
    recipe = pretrained_recipe()
    return cached_model(PRETRAINED_NAME, recipe, lambda: torch_cnn(recipe["width"], recipe["dropout"]),
                        lambda model: train_pretrained_cnn(model, recipe, progress), retrain)
