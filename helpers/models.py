"""The course's models in PyTorch and Keras (MLP, CNN, LSTM over image rows, the two official reference CNNs)
and the cached "pretrained" Chapter 8 CNN that later chapters start from.

PyTorch and Keras are imported inside the functions, so `import helpers` stays fast. Every PyTorch model takes
normalised images of shape (N, 1, 28, 28) and returns logits (N, 10); every Keras model takes (N, 28, 28, 1)
and returns probabilities (softmax), as Keras' examples do.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core import data_dir
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


def _conv_block(cin: int, cout: int) -> nn.Module:
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
                _conv_block(1, w), nn.MaxPool2d(2),                              # 28x28 -> 14x14
                _conv_block(w, 2 * w), _conv_block(2 * w, 2 * w), nn.MaxPool2d(2),  # 14x14 -> 7x7
                _conv_block(2 * w, 4 * w), _conv_block(4 * w, 4 * w),
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


# ---------------------------------------------------------------- the cached "pretrained" Chapter 8 CNN

PRETRAINED_NAME = "ch08_cnn"
PRETRAINED_RECIPE = {"width": 16, "dropout": 0.1, "epochs": 15, "batch_size": 128, "max_lr": 3e-3,
                     "weight_decay": 5e-4, "label_smoothing": 0.1, "augment": "rotate 10°, shift 2 px, zoom 10%",
                     "seed": 0}


def pretrained_path() -> Path:
    """Where the pretrained Chapter 8 CNN's weights live: data/models/ch08_cnn.pt (plus ch08_cnn.json)."""
    return data_dir() / "models" / f"{PRETRAINED_NAME}.pt"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _atomic_write(path: Path, write) -> None:
    """Call write(file object) on a temporary file next to `path`, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _load_verified(path: Path) -> tuple[nn.Module, dict] | None:
    """The cached model and its record if the file's checksum and every tensor shape are right, else None."""
    import torch

    meta_path = path.with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("recipe") != PRETRAINED_RECIPE or _sha256(path) != meta["sha256"]:
            return None
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = torch_cnn(PRETRAINED_RECIPE["width"], PRETRAINED_RECIPE["dropout"])
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        if {k: tuple(v.shape) for k, v in state.items()} != expected:
            return None
        model.load_state_dict(state)
    except Exception:  # missing, truncated, unreadable or foreign: all mean "train it again"
        return None
    return model.eval(), meta


def train_pretrained_cnn(progress: bool = True) -> tuple[nn.Module, dict]:
    """Train the Chapter 8 CNN deterministically on all 60,000 training images (a few minutes on a CPU)."""
    import numpy as np
    import torch

    from .core import seed_everything
    from .data import load_mnist, torch_loader
    from .train import evaluate, fit, one_cycle, random_affine

    r = PRETRAINED_RECIPE
    seed_everything(r["seed"])
    (x_train, y_train), (x_test, y_test) = load_mnist(progress=progress)
    model = torch_cnn(r["width"], r["dropout"]).to(memory_format=torch.channels_last)  # faster CPU convolutions
    train = torch_loader(x_train, y_train, batch_size=r["batch_size"], shuffle=True, seed=r["seed"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=r["max_lr"], weight_decay=r["weight_decay"])
    scheduler = one_cycle(optimizer, r["max_lr"], r["epochs"], len(train))
    start = time.perf_counter()
    fit(model, train, epochs=r["epochs"], optimizer=optimizer, scheduler=scheduler, augment=random_affine,
        label_smoothing=r["label_smoothing"], progress=progress)
    seconds = time.perf_counter() - start
    test_loss, test_acc = evaluate(model, torch_loader(x_test, y_test, batch_size=1000))
    meta = {"recipe": r, "test_accuracy": round(test_acc, 6), "test_loss": round(test_loss, 6),
            "train_seconds": round(seconds, 1), "torch": torch.__version__, "numpy": np.__version__}
    return model.to(memory_format=torch.contiguous_format).eval(), meta


def pretrained_cnn(retrain: bool = False, progress: bool = True) -> nn.Module:
    """The trained Chapter 8 CNN (eval mode): loaded from data/models/ if intact, else trained and cached first."""
    return pretrained_cnn_with_info(retrain, progress)[0]


def pretrained_cnn_with_info(retrain: bool = False, progress: bool = True) -> tuple[nn.Module, dict]:
    """(model, record): the record holds the recipe, test accuracy, training seconds and the file's SHA-256."""
    import torch

    path = pretrained_path()
    cached = None if retrain else _load_verified(path)
    if cached is not None:
        return cached
    if path.exists() and not retrain:
        print(f"{path.name}: cached weights missing their record, corrupt or from another recipe; training again")
    model, meta = train_pretrained_cnn(progress)
    _atomic_write(path, lambda f: torch.save(model.state_dict(), f))
    meta["sha256"] = _sha256(path)
    _atomic_write(path.with_suffix(".json"), lambda f: f.write(json.dumps(meta, indent=2).encode()))
    return model, meta
