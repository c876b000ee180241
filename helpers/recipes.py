"""How the course trains its CNN, once: a `Recipe`, `train_recipe` (used by Chapters 7-9, the benchmark and the
cache), and `cached_model`, which trains a model once and loads it afterwards.

    model, record = pretrained_cnn()                 # Chapter 8's CNN, trained on first use (data/models/)
    history = train_recipe(model, FAST, (x, y))      # the same CNN, another recipe, any images

A cached model's file name carries a hash of everything that decides its weights: the recipe, the data it saw,
and the source code of the training loop and the network (`code_version`). Change any of them and the next run
trains a new model instead of serving a stale one.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from . import train
from .cache import cache_path, cached
from .core import atomic_file, data_dir, is_quick, seed_everything
from .data import load_mnist, split_train_val, subset
from .saved.ch06 import random_affine
from .saved.ch07 import only_classes
from .torch_models import CourseCNN, conv_block


@dataclass(frozen=True)
class Recipe:
    """Everything that decides how the course CNN is trained; train_recipe reads every field."""

    epochs: int = 15
    batch_size: int = 128
    max_lr: float = 3e-3  # AdamW's peak learning rate under a one-cycle schedule
    warmup: float = 0.25  # fraction of the steps spent warming up to max_lr (one-cycle's pct_start)
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    degrees: float = 10.0  # augmentation (random_affine): rotation, shift in pixels and zoom; all 0: none
    shift: float = 2.0
    zoom: float = 0.1
    ema: float | None = None  # decay of a moving average of the weights, which then become the model; None: off
    width: int = 16  # the CNN's channels in its first block
    dropout: float = 0.1
    batchnorm: bool = True  # BatchNorm after every convolution (False: the convolutions keep their biases)
    schedule: Literal["one_cycle", "constant"] = "one_cycle"  # "constant": max_lr throughout, no warm-up
    seed: int = 0

    def build(self) -> CourseCNN:
        """The course CNN this recipe trains, with the seeded initial weights."""
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            return CourseCNN(self.width, self.dropout, self.batchnorm)


CHAPTER8 = Recipe()  # Chapter 8's CNN: 15 epochs, 99.6% and more
QUICK = replace(CHAPTER8, epochs=2)  # quick mode, when Chapter 8's CNN is not cached yet
# The same CNN trained to reach 99% as soon as possible (make bench, Chapter 8): smaller batches, a higher peak
# learning rate after a 3% warm-up, and predictions from an exponential moving average of the weights.
FAST = replace(CHAPTER8, batch_size=64, max_lr=5e-3, warmup=0.03, ema=0.99)


def train_recipe(model: nn.Module, recipe: Recipe, data: tuple[np.ndarray, np.ndarray],
                 callback: Callable | None = None, max_steps: int | None = None,
                 progress: bool = True) -> train.History:
    """Train `model` (normally recipe.build()) on uint8 images and labels, deterministically; with recipe.ema, the
    moving average's weights are copied into the model at the end. callback(step, model) sees the weights that
    will be used (the average, with ema); max_steps stops early (the start of the full run's schedule)."""
    seed_everything(recipe.seed)
    model.to(memory_format=torch.channels_last)  # faster convolutions on the CPU
    loader = train.torch_loader(*data, batch_size=recipe.batch_size, shuffle=True, seed=recipe.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.max_lr, weight_decay=recipe.weight_decay)
    scheduler = None
    if recipe.schedule == "one_cycle":
        scheduler = train.one_cycle(optimizer, recipe.max_lr, recipe.epochs, len(loader), pct_start=recipe.warmup)
    elif recipe.schedule != "constant":
        raise ValueError(f"Recipe.schedule must be 'one_cycle' or 'constant', not {recipe.schedule!r}")
    augment = None
    if recipe.degrees or recipe.shift or recipe.zoom:
        augment = partial(random_affine, degrees=recipe.degrees, shift=recipe.shift, scale=recipe.zoom)
    averaged = train.ema(model, recipe.ema) if recipe.ema else None

    def after_step(step: int, net: nn.Module) -> None:
        if averaged is not None:
            averaged.update_parameters(net)
        if callback is not None:
            callback(step, averaged.module if averaged is not None else net)

    history = train.fit(model, loader, epochs=recipe.epochs, optimizer=optimizer, scheduler=scheduler,
                        augment=augment, label_smoothing=recipe.label_smoothing, progress=progress, max_steps=max_steps,
                        callback=after_step if averaged is not None or callback is not None else None)
    if averaged is not None:
        model.load_state_dict(averaged.module.state_dict())
    model.to(memory_format=torch.contiguous_format)
    return history


def code_version() -> str:
    """A hash of the source code that decides a cached model's weights: the loop, the batches, the network."""
    parts = [train_recipe, Recipe, train.fit, train.classification_loss, train.TensorBatches, train.torch_loader,
             train.one_cycle, train.ema, random_affine, CourseCNN, conv_block]
    return hashlib.sha256("".join(inspect.getsource(p) for p in parts).encode()).hexdigest()[:10]


# ---------------------------------------------------------------- the cache


def cached_path(name: str, key: dict) -> Path:
    """Where cached_model keeps a model: data/models/NAME-<key hash>.pt (its record: the same name, .json)."""
    return cache_path(name, key, ".pt")


def _save_state(model: nn.Module, path: Path) -> None:
    with atomic_file(path) as out:
        torch.save(model.state_dict(), out)


def cached_model(name: str, key: dict, build: Callable[[], nn.Module], fit: Callable[[nn.Module], dict],
                 retrain: bool = False) -> tuple[nn.Module, dict]:
    """A PyTorch model trained once, then loaded (eval mode): data/models/NAME-<key hash>.pt plus a .json record.

    The record holds the key, what `fit(model)` returned (e.g. test accuracy) and the file's SHA-256; a missing,
    truncated or altered file, or a different key, means the model is trained again (helpers.cache).
    """
    def load(path: Path) -> nn.Module:
        model = build()
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model

    model, record = cached(name, key, build, fit, _save_state, load, ".pt", retrain)
    return model.eval(), record


# ---------------------------------------------------------------- the models later chapters start from


def _train_and_test(model: nn.Module, recipe: Recipe, train_data, test_data, progress: bool,
                    val_data=None) -> dict:
    """train_recipe (with validation curves when val_data is given), then one test: what a cache record keeps."""
    curves: dict[str, list[float]] = {"val_loss": [], "val_accuracy": []}
    steps = math.ceil(len(train_data[1]) / recipe.batch_size)

    def validate(step: int, net: nn.Module) -> None:
        if val_data is not None and step % steps == 0:  # the end of every epoch
            loss, accuracy = train.evaluate(net, train.torch_loader(*val_data, batch_size=1000))
            curves["val_loss"].append(round(loss, 6))
            curves["val_accuracy"].append(round(accuracy, 6))

    history = train_recipe(model, recipe, train_data, callback=validate, progress=progress)
    test_loss, test_acc = train.evaluate(model, train.torch_loader(*test_data, batch_size=1000))
    return {"train_images": len(train_data[1]), "test_accuracy": round(test_acc, 6), "test_loss": round(test_loss, 6),
            "train_seconds": round(history.train_seconds, 1), "history": {
                "epoch": history.epoch, "loss": [round(v, 6) for v in history.loss],
                "accuracy": [round(v, 6) for v in history.accuracy], **curves,
                "seconds": [round(v, 2) for v in history.seconds]}, "torch": torch.__version__}


def pretrained_recipe() -> Recipe:
    """The recipe pretrained_cnn uses now: Chapter 8's, or in quick mode the 2-epoch one unless Chapter 8's is
    cached."""
    if is_quick() and not _pretrained_path(CHAPTER8).exists():
        return QUICK
    return CHAPTER8


VALIDATION = 5_000  # images the course holds out of MNIST's 60,000 training images (split_train_val, seed 0)


def _pretrained_key(recipe: Recipe) -> dict:
    return {"recipe": asdict(recipe), "code": code_version(),
            "data": f"MNIST training set minus {VALIDATION:,} validation images (split_train_val, seed 0)"}


def _pretrained_path(recipe: Recipe) -> Path:
    return cached_path("ch08_cnn", _pretrained_key(recipe))


def pretrained_cnn(retrain: bool = False, progress: bool = True) -> tuple[CourseCNN, dict]:
    """Chapter 8's CNN, trained (eval mode) and its record: recipe, test accuracy, training seconds, the history
    (with a validation curve) and the file's SHA-256.

    Full mode trains it once, 15 epochs on 55,000 training images (5,000 held out for validation: the split of
    Chapter 8), a few minutes, then loads it from data/models/; quick mode, with nothing cached, trains a 2-epoch
    model instead. Whichever chapter asks first trains it; the others load it.
    """
    recipe = pretrained_recipe()
    if progress and not retrain and not _pretrained_path(recipe).exists():
        print(f"Training Chapter 8's CNN once: {recipe.epochs} epochs on 55,000 images, cached in data/models/ "
              f"({training_estimate(recipe)}; later runs load it)")

    def fit(model: nn.Module) -> dict:
        (x_train, y_train), test = load_mnist(progress=progress)
        train_data, val_data = split_train_val(x_train, y_train, val_size=VALIDATION, seed=0)
        return _train_and_test(model, recipe, train_data, test, progress, val_data)

    return cached_model("ch08_cnn", _pretrained_key(recipe), recipe.build, fit, retrain)


def training_estimate(recipe: Recipe) -> str:
    """How long training Chapter 8's CNN takes: the last training of this recipe on this machine, else a guess."""
    records = sorted((data_dir() / "models").glob("ch08_cnn-*.json"), key=lambda p: p.stat().st_mtime)
    for path in reversed(records):  # newest first; records of older code versions count too (same recipe)
        try:
            record = json.loads(path.read_text())
            if record.get("key", {}).get("recipe") == asdict(recipe) and record.get("train_seconds"):
                seconds = float(record["train_seconds"])
                return f"about {max(1, round(seconds / 60))} min here: the last training took {seconds:.0f} s"
        except (ValueError, OSError, AttributeError):
            continue
    return "a few minutes on a laptop CPU"


def pretrained_record() -> dict | None:
    """The record of Chapter 8's cached CNN (recipe, test accuracy, history), or None if it is not cached yet;
    nothing is trained."""
    path = _pretrained_path(pretrained_recipe()).with_suffix(".json")
    return json.loads(path.read_text()) if path.exists() else None


def pretrained_on_digits(classes: Sequence[int] = (0, 1, 2, 3, 4), epochs: int = 3, images: int | None = None,
                         seed: int = 0, retrain: bool = False, progress: bool = True) -> tuple[CourseCNN, dict]:
    """The course CNN pretrained on the training images of some digits only (cached), and its record.

    Chapter 7's "large pretrained model": trained on digits 0-4, then adapted to 5-9 with few labels.
    `images` caps the number of training images (None: all of those digits).
    """
    recipe = replace(CHAPTER8, epochs=epochs, label_smoothing=0.0, seed=seed)
    classes = [int(c) for c in classes]
    key = {"recipe": asdict(recipe), "data": {"classes": classes, "images": images}, "code": code_version()}

    def fit(model: nn.Module) -> dict:
        (x_train, y_train), (x_test, y_test) = load_mnist(progress=progress)
        data = subset(*only_classes(x_train, y_train, classes), images, seed=seed)
        return _train_and_test(model, recipe, data, only_classes(x_test, y_test, classes), progress)

    return cached_model(f"ch07_cnn_digits{''.join(map(str, classes))}", key, recipe.build, fit, retrain)
