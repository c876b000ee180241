"""A small PyTorch training loop: fit / evaluate / predict, a history, progress bars, a one-cycle schedule,
early stopping, atomic checkpoints with exact resume, weight averaging (EMA), and random-affine augmentation
without torchvision."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from .core import atomic_file
from .data import MEAN, STD

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass
class History:
    """Per-epoch records of one training run (train/validation loss and accuracy, learning rate, seconds)."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # training time of each epoch, evaluation excluded

    def as_dict(self) -> dict[str, list]:
        """The history as a plain dict of lists (what Keras' History.history holds)."""
        return asdict(self)

    @property
    def train_seconds(self) -> float:
        """Total training time in seconds, evaluation excluded."""
        return float(sum(self.seconds))


def random_affine(x: torch.Tensor, degrees: float = 10.0, shift: float = 2.0, scale: float = 0.1,
                  fill: float = -MEAN / STD) -> torch.Tensor:
    """Rotate (±degrees), zoom (±scale) and shift (±shift pixels) each image of a batch (N, C, H, W) at random."""
    import torch
    import torch.nn.functional as F

    n, _, h, w = x.shape
    angle = (torch.rand(n) * 2 - 1) * math.radians(degrees)
    zoom = 1 + (torch.rand(n) * 2 - 1) * scale
    tx, ty = [(torch.rand(n) * 2 - 1) * shift * 2 / size for size in (w, h)]  # pixels -> grid units (-1..1)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x - fill, grid, align_corners=False) + fill  # pixels from outside become background


def one_cycle(optimizer: torch.optim.Optimizer, max_lr: float, epochs: int, steps_per_epoch: int,
              pct_start: float = 0.25) -> torch.optim.lr_scheduler.LRScheduler:
    """A one-cycle learning-rate schedule (warm up, then anneal), stepped once per batch."""
    import torch

    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, epochs=epochs,
                                               steps_per_epoch=steps_per_epoch, pct_start=pct_start)


def ema(model: nn.Module, decay: float = 0.99) -> torch.optim.swa_utils.AveragedModel:
    """An exponential moving average (EMA) of a model's weights and BatchNorm statistics; call
    .update_parameters(model) after every optimizer step. The decay warms up as min(decay, (1 + n) / (10 + n))
    over the first n updates (as in tf.train.ExponentialMovingAverage), so early averages are not stuck near
    the random initial weights."""
    from torch.optim.swa_utils import AveragedModel

    def average(avg: torch.Tensor, new: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        if not avg.is_floating_point():  # BatchNorm's batch counter
            return new
        return avg.lerp(new, 1 - min(decay, (1 + int(n)) / (10 + int(n))))

    return AveragedModel(model, avg_fn=average, use_buffers=True)


def evaluate(model: nn.Module, loader, device: torch.device | str | None = None) -> tuple[float, float]:
    """(mean cross-entropy loss, accuracy) of a model over a loader of (images, labels)."""
    import torch
    import torch.nn.functional as F

    device = device or next(model.parameters()).device
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            logits = model(x)
            total_loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            count += len(y)
    return total_loss / count, correct / count


def predict_proba(model: nn.Module, images, batch_size: int = 1000) -> np.ndarray:
    """Class probabilities (N, 10) for a tensor/array of model inputs, or for a loader of (images, labels)."""
    import torch

    device = next(model.parameters()).device
    model.eval()
    batches = images if not hasattr(images, "shape") else torch.as_tensor(images).split(batch_size)
    out = []
    with torch.no_grad():
        for batch in batches:
            x = batch[0] if isinstance(batch, list | tuple) else batch
            out.append(torch.softmax(model(x.to(device)), 1).cpu().numpy())
    return np.concatenate(out)


# ---------------------------------------------------------------- checkpoints


def atomic_save(obj: object, path: str | Path) -> None:
    """torch.save to a temporary file in the same folder, then rename: a crash never leaves a half-written file."""
    import torch

    with atomic_file(path) as out:
        torch.save(obj, out)


def save_checkpoint(path: str | Path, model: nn.Module, optimizer=None, scheduler=None, epoch: int = 0,
                    history: History | None = None, loader=None) -> None:
    """Save everything needed to resume exactly: weights, optimizer, scheduler, RNG states, epoch, history."""
    import torch

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
    import torch

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


def fit(model: nn.Module, train_loader, val_loader=None, epochs: int = 5, optimizer=None, scheduler=None,
        scheduler_step: str = "batch", augment: Callable | None = None, label_smoothing: float = 0.0,
        patience: int | None = None, checkpoint: str | Path | None = None, resume: bool = False,
        progress: bool = True, device: torch.device | str | None = None,
        loss_fn: Callable | None = None) -> History:
    """Train with cross-entropy; evaluate on val_loader after each epoch; return the History.

    scheduler is stepped every batch (scheduler_step="batch", e.g. one_cycle) or every epoch ("epoch").
    loss_fn(logits, y, x): replaces the cross-entropy (label_smoothing is then unused); x is the batch as the
    model saw it (after augmentation), so a distillation loss can run the teacher on the same images.
    patience: stop when validation accuracy has not improved for that many epochs and restore the best weights.
    checkpoint: save after every epoch (atomically); with resume=True, continue from it if it exists.
    """
    import torch
    import torch.nn.functional as F

    device = torch.device(device) if device else next(model.parameters()).device
    model.to(device)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=1e-3)
    history, start_epoch = History(), 0
    if checkpoint and resume and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, model, optimizer, scheduler, train_loader)
        start_epoch, history = state["epoch"], History(**state["history"])
    best_acc, best_state, bad_epochs = -1.0, None, 0
    bar = tqdm(total=(epochs - start_epoch) * len(train_loader), disable=not progress, mininterval=1.0,
               unit="batch", dynamic_ncols=False, ncols=100)
    for epoch in range(start_epoch + 1, epochs + 1):
        model.train()
        bar.set_description(f"epoch {epoch}/{epochs}")
        total_loss, correct, count, clock = 0.0, 0, 0, time.perf_counter()
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            if augment is not None:
                x = augment(x)
            logits = model(x)
            if loss_fn is None:
                loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
            else:
                loss = loss_fn(logits, y, x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None and scheduler_step == "batch":
                scheduler.step()
            total_loss += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            count += len(y)
            bar.update()
            bar.set_postfix(loss=f"{total_loss / count:.4f}", refresh=False)
        if scheduler is not None and scheduler_step == "epoch":
            scheduler.step()
        history.seconds.append(time.perf_counter() - clock)
        history.epoch.append(epoch)
        history.train_loss.append(total_loss / count)
        history.train_acc.append(correct / count)
        history.lr.append(optimizer.param_groups[0]["lr"])
        if val_loader is not None:
            val_loss, val_acc = evaluate(model, val_loader, device)
            history.val_loss.append(val_loss)
            history.val_acc.append(val_acc)
            bar.set_postfix(loss=f"{total_loss / count:.4f}", val_acc=f"{val_acc:.4f}")
            if val_acc > best_acc:
                best_acc, best_state, bad_epochs = val_acc, copy.deepcopy(model.state_dict()), 0
            else:
                bad_epochs += 1
        if checkpoint:
            save_checkpoint(checkpoint, model, optimizer, scheduler, epoch, history, train_loader)
        if patience is not None and val_loader is not None and bad_epochs >= patience and epoch < epochs:
            tqdm.write(f"early stopping after epoch {epoch}: no better validation accuracy for {patience} epochs")
            break
    bar.close()
    if patience is not None and best_state is not None:
        model.load_state_dict(best_state)  # early stopping keeps the best epoch's weights
    return history


# ---------------------------------------------------------------- deployment


def export_onnx(model: nn.Module, path: str | Path, opset: int = 18) -> Path:
    """Export a model for (N, 1, 28, 28) images to ONNX with a dynamic batch size: input 'images', output 'logits'."""
    import logging
    import warnings

    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    example = torch.zeros(2, 1, 28, 28)
    batch = torch.export.Dim("batch", min=1, max=65536)
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)  # e.g. "torchvision is not installed. Skipping torchvision::nms"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's progress chatter
        program = torch.onnx.export(model, (example,), input_names=["images"], output_names=["logits"],
                                    dynamic_shapes=({0: batch},), opset_version=opset, dynamo=True, verbose=False)
    logger.setLevel(level)
    program.save(str(path))
    return path
