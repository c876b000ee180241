"""The course's PyTorch training loop (Chapter 8): batches from memory, fit / evaluate / predict, a Keras-style
history, a one-cycle schedule, early stopping, atomic checkpoints with exact resume and weight averaging (EMA).

    history = fit(model, torch_loader(x, y, shuffle=True), torch_loader(x_val, y_val), epochs=5)
    history.val_accuracy[-1], history.train_seconds

One loop serves every chapter: `loss_fn(model, batch)` replaces the loss (distillation, CTC, a language model),
and `callback(step, model)` runs after every optimizer step (an EMA update, a measurement every 1/20 epoch).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .core import atomic_file
from .data import normalize

Batch = Sequence[torch.Tensor]


class TensorBatches:
    """Batches sliced from tensors held in memory: one seeded shuffle per epoch, then one index per batch.

    What torch.utils.data.DataLoader(TensorDataset(...)) gives, without its per-image indexing and collating,
    which for 28×28 images costs more than the small networks of this course take to compute.
    """

    def __init__(self, *tensors: torch.Tensor, batch_size: int = 128, shuffle: bool = False, seed: int = 0):
        if len({len(t) for t in tensors}) != 1:
            raise ValueError(f"tensors of different lengths: {[len(t) for t in tensors]}")
        self.tensors, self.batch_size, self.shuffle = tensors, batch_size, shuffle
        self.generator = torch.Generator().manual_seed(seed)  # saved in checkpoints: resume replays the order

    def __len__(self) -> int:
        return math.ceil(len(self.tensors[0]) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        n = len(self.tensors[0])
        order = torch.randperm(n, generator=self.generator) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            if order is None:
                yield tuple(t[start:start + self.batch_size] for t in self.tensors)
            else:
                index = order[start:start + self.batch_size]
                yield tuple(t[index] for t in self.tensors)


def torch_loader(x: np.ndarray, y: np.ndarray, batch_size: int = 128, shuffle: bool = False, seed: int = 0,
                 flatten: bool = False) -> TensorBatches:
    """Normalised images (N, 1, 28, 28), or (N, 784) with flatten=True, and int64 labels, in batches."""
    images = torch.from_numpy(normalize(x))
    images = images.reshape(len(x), -1) if flatten else images.unsqueeze(1)
    return TensorBatches(images, torch.from_numpy(np.asarray(y).astype(np.int64)), batch_size=batch_size,
                         shuffle=shuffle, seed=seed)


@dataclass
class History:
    """Per-epoch records of one training run, under Keras' names (History.history in Keras)."""

    epoch: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)  # mean training loss over the epoch's batches
    accuracy: list[float] = field(default_factory=list)  # training accuracy (only with the default loss)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)  # learning rate at the end of the epoch
    seconds: list[float] = field(default_factory=list)  # training time of each epoch, evaluation excluded

    def as_dict(self) -> dict[str, list]:
        """The history as a plain dict of lists, like Keras' History.history."""
        return asdict(self)

    @property
    def train_seconds(self) -> float:
        """Total training time in seconds, evaluation excluded."""
        return float(sum(self.seconds))


# ---------------------------------------------------------------- schedules and averaging


def one_cycle(optimizer: torch.optim.Optimizer, max_lr: float, epochs: int, steps_per_epoch: int,
              pct_start: float = 0.25) -> torch.optim.lr_scheduler.LRScheduler:
    """A one-cycle learning-rate schedule (warm up for pct_start of the steps, then anneal), stepped every batch."""
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, epochs=epochs,
                                               steps_per_epoch=steps_per_epoch, pct_start=pct_start)


def ema(model: nn.Module, decay: float = 0.99) -> torch.optim.swa_utils.AveragedModel:
    """An exponential moving average (EMA) of a model's weights and BatchNorm statistics; call
    .update_parameters(model) after every optimizer step. The decay warms up as min(decay, (1 + n) / (10 + n))
    over the first n updates (as in tf.train.ExponentialMovingAverage), so early averages are not stuck near
    the random initial weights."""

    def average(avg: torch.Tensor, new: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        if not avg.is_floating_point():  # BatchNorm's batch counter
            return new
        return avg.lerp(new, 1 - min(decay, (1 + int(n)) / (10 + int(n))))

    return torch.optim.swa_utils.AveragedModel(model, avg_fn=average, use_buffers=True)


# ---------------------------------------------------------------- evaluation


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def evaluate(model: nn.Module, loader, device: torch.device | str | None = None) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of a classifier over (images, labels) batches; the model's mode is kept."""
    device = torch.device(device) if device else _model_device(model)
    was_training = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    with torch.inference_mode():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            logits = model(x)
            total_loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            count += len(y)
    model.train(was_training)
    return total_loss / count, correct / count


def predict_proba(model: nn.Module, images, batch_size: int = 1000) -> np.ndarray:
    """Class probabilities (N, 10) for a tensor/array of model inputs, or for (images, labels) batches."""
    device = _model_device(model)
    was_training = model.training
    model.eval()
    batches = images if not hasattr(images, "shape") else torch.as_tensor(images).split(batch_size)
    out = []
    with torch.inference_mode():
        for batch in batches:
            x = batch[0] if isinstance(batch, list | tuple) else batch
            out.append(torch.softmax(model(x.to(device)), 1).cpu().numpy())
    model.train(was_training)
    return np.concatenate(out)


# ---------------------------------------------------------------- checkpoints


def atomic_save(obj: object, path: str | Path) -> None:
    """torch.save to a temporary file in the same folder, then rename: a crash never leaves a half-written file."""
    with atomic_file(path) as out:
        torch.save(obj, out)


def save_checkpoint(path: str | Path, model: nn.Module, optimizer=None, scheduler=None, epoch: int = 0,
                    history: History | None = None, loader=None) -> None:
    """Save everything needed to resume exactly: weights, optimizer, scheduler, RNG states, epoch, history."""
    state = {"model": model.state_dict(), "epoch": epoch, "torch_rng": torch.get_rng_state(),
             "numpy_rng": np.random.get_state(), "history": history.as_dict() if history else None}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    if getattr(loader, "generator", None) is not None:
        state["loader_rng"] = loader.generator.get_state()
    atomic_save(state, path)


def load_checkpoint(path: str | Path, model: nn.Module, optimizer=None, scheduler=None, loader=None) -> dict:
    """Restore a checkpoint written by save_checkpoint into the given objects; returns the checkpoint dict."""
    state = torch.load(path, map_location="cpu", weights_only=False)  # our own file: it holds RNG states too
    model.load_state_dict(state["model"])
    if optimizer is not None and "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and "scheduler" in state:
        scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    np.random.set_state(state["numpy_rng"])
    if getattr(loader, "generator", None) is not None and "loader_rng" in state:
        loader.generator.set_state(state["loader_rng"])
    return state


# ---------------------------------------------------------------- the loop


def classification_loss(label_smoothing: float = 0.0, augment: Callable | None = None) -> Callable:
    """The default loss_fn: cross-entropy of the model's logits for (images, labels), after augmentation."""

    def loss_fn(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y = batch
        logits = model(augment(x) if augment is not None else x)
        return F.cross_entropy(logits, y, label_smoothing=label_smoothing), logits, y

    return loss_fn


def fit(model: nn.Module, train_loader, val_loader=None, epochs: int = 5, optimizer=None, scheduler=None,
        scheduler_step: Literal["batch", "epoch"] = "batch", loss_fn: Callable | None = None,
        augment: Callable | None = None, label_smoothing: float = 0.0, patience: int | None = None,
        checkpoint: str | Path | None = None, resume: bool = False, callback: Callable | None = None,
        max_steps: int | None = None, progress: bool = True, device: torch.device | str | None = None) -> History:
    """Train; evaluate on val_loader after each epoch; return the History (Keras' names: loss, val_accuracy, …).

    loss_fn(model, batch) -> loss, or (loss, logits, labels) to also count training accuracy; by default the
        cross-entropy of model(augment(x)) with label smoothing.
    scheduler: stepped after every batch (scheduler_step="batch", e.g. one_cycle) or every epoch ("epoch").
    callback(step, model): called after every optimizer step (step counts from 1 over the whole run).
    max_steps: stop after that many optimizer steps, in the middle of an epoch if need be (the schedule is not
        shortened: it is the start of the full run).
    patience: stop when validation accuracy has not improved for that many epochs and restore the best weights.
    checkpoint: save after every epoch (atomically); with resume=True, continue from it if it exists.
    """
    if scheduler_step not in ("batch", "epoch"):
        raise ValueError(f"scheduler_step must be 'batch' or 'epoch', not {scheduler_step!r}")
    if loss_fn is not None and (augment is not None or label_smoothing):
        raise ValueError("augment and label_smoothing belong to the default loss; apply them inside your loss_fn")
    loss_fn = loss_fn or classification_loss(label_smoothing, augment)
    device = torch.device(device) if device else _model_device(model)
    model.to(device)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=1e-3)
    history, start_epoch = History(), 0
    if checkpoint and resume and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, model, optimizer, scheduler, train_loader)
        start_epoch, history = state["epoch"], History(**state["history"])
    best_acc, best_state, bad_epochs, step = -1.0, None, 0, start_epoch * len(train_loader)
    total = (epochs - start_epoch) * len(train_loader)
    bar = tqdm(total=min(total, max_steps - step) if max_steps else total, disable=not progress, mininterval=1.0,
               unit="batch", ncols=100)
    for epoch in range(start_epoch + 1, epochs + 1):
        model.train()
        bar.set_description(f"epoch {epoch}/{epochs}")
        total_loss, correct, count, batches, clock = 0.0, 0, 0, 0, time.perf_counter()
        for batch in train_loader:
            batch = [t.to(device) for t in batch]
            out = loss_fn(model, batch)
            loss, logits, labels = out if isinstance(out, tuple) else (out, None, None)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None and scheduler_step == "batch":
                scheduler.step()
            total_loss += loss.item()
            batches += 1
            if logits is not None:
                correct += (logits.argmax(-1) == labels).sum().item()
                count += labels.numel()
            step += 1
            if callback is not None:
                callback(step, model)
            bar.update()
            bar.set_postfix(loss=f"{total_loss / batches:.4f}", refresh=False)
            if max_steps is not None and step >= max_steps:
                break
        if scheduler is not None and scheduler_step == "epoch":
            scheduler.step()
        history.seconds.append(time.perf_counter() - clock)
        history.epoch.append(epoch)
        history.loss.append(total_loss / batches)
        if count:
            history.accuracy.append(correct / count)
        history.lr.append(optimizer.param_groups[0]["lr"])
        if val_loader is not None:
            val_loss, val_acc = evaluate(model, val_loader, device)
            history.val_loss.append(val_loss)
            history.val_accuracy.append(val_acc)
            bar.set_postfix(loss=f"{total_loss / batches:.4f}", val_accuracy=f"{val_acc:.4f}")
            if val_acc > best_acc:
                best_acc, best_state, bad_epochs = val_acc, copy.deepcopy(model.state_dict()), 0
            else:
                bad_epochs += 1
        if checkpoint:
            save_checkpoint(checkpoint, model, optimizer, scheduler, epoch, history, train_loader)
        if patience is not None and val_loader is not None and bad_epochs >= patience and epoch < epochs:
            tqdm.write(f"early stopping after epoch {epoch}: no better validation accuracy for {patience} epochs")
            break
        if max_steps is not None and step >= max_steps:
            break
    bar.close()
    if patience is not None and best_state is not None:
        model.load_state_dict(best_state)  # early stopping keeps the best epoch's weights
    return history
