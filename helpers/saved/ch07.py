"""The code Chapter 7 teaches, saved for later chapters (第7章 大模型微调与优化).

Generated from notebooks/ch07_finetune_compress.ipynb (its cells tagged `save`) by scripts/save_helpers.py.
Do not edit: change the notebook, then run `make helpers`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def only_classes(x: np.ndarray, y: np.ndarray, classes) -> tuple[np.ndarray, np.ndarray]:
    """The examples whose label is in `classes`."""
    keep = np.isin(y, list(classes))
    return x[keep], y[keep]


def few_shot(x: np.ndarray, y: np.ndarray, classes, per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded subset with exactly `per_class` examples of each class in `classes` (labels unchanged)."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in classes:
        idx = np.flatnonzero(y == c)
        if len(idx) < per_class:
            raise ValueError(f"class {c} has only {len(idx)} examples, asked for {per_class}")
        keep.append(rng.choice(idx, per_class, replace=False))
    keep = np.sort(np.concatenate(keep))
    return x[keep], y[keep]


def _keep_batchnorm_in_eval(module: nn.Module, args) -> None:
    """Forward pre-hook: a frozen BatchNorm layer normalises with its running statistics and never updates them."""
    module.eval()


def freeze(module: nn.Module) -> nn.Module:
    """Stop training a module: requires_grad=False on its parameters; its BatchNorm layers stay in eval mode."""
    for p in module.parameters():
        p.requires_grad_(False)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not hasattr(m, "_freeze_hook"):
            m._freeze_hook = m.register_forward_pre_hook(_keep_batchnorm_in_eval)
    return module


def unfreeze(module: nn.Module) -> nn.Module:
    """Train a module again: requires_grad=True on its parameters, BatchNorm layers follow model.train() again."""
    for p in module.parameters():
        p.requires_grad_(True)
    for m in module.modules():
        hook = m.__dict__.pop("_freeze_hook", None)
        if hook is not None:
            hook.remove()
    return module


def head(model: nn.Module) -> nn.Linear:
    """The model's last nn.Linear layer (its classification head)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("the model has no nn.Linear layer to use as its head")
    return linears[-1]


def reset_head(model: nn.Module, seed: int = 0) -> nn.Module:
    """Re-initialise the classification head with fresh random weights (seeded), as for a new task."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        head(model).reset_parameters()
    return model


def discriminative_lr(model: nn.Module, lr: float, decay: float = 0.5) -> list[dict]:
    """Optimizer parameter groups, one per layer (a normalisation layer joins the layer before it), whose learning
    rate shrinks by `decay` per layer going down from the head."""
    norms = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)
    groups: list[list[nn.Parameter]] = []
    for m in model.modules():
        params = [p for p in m.parameters(recurse=False) if p.requires_grad]
        if params and isinstance(m, norms) and groups:
            groups[-1].extend(params)
        elif params:
            groups.append(params)
    return [{"params": params, "lr": lr * decay ** (len(groups) - 1 - i)} for i, params in enumerate(groups)]


class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trainable low-rank update: y = base(x) + (alpha/r) · x Aᵀ Bᵀ."""

    def __init__(self, base: nn.Linear, rank: int = 4, alpha: float = 8.0):
        super().__init__()
        self.base, self.rank, self.alpha, self.scale, self.merged = base, rank, alpha, alpha / rank, False
        base.requires_grad_(False)
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features))  # (r, in)
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank))  # (out, r), zero: starts as the base layer
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    def delta_weight(self) -> torch.Tensor:
        """The update (alpha/r) · B A, shaped like base.weight (out, in)."""
        return (self.lora_B @ self.lora_A) * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if not self.merged:
            out = out + (x @ self.lora_A.T @ self.lora_B.T) * self.scale  # (N, in) -> (N, r) -> (N, out)
        return out


class LoRAConv2d(nn.Module):
    """A frozen nn.Conv2d plus a low-rank update: an r-channel convolution A (the same kernel), then a 1×1 B."""

    def __init__(self, base: nn.Conv2d, rank: int = 4, alpha: float = 8.0):
        super().__init__()
        if base.groups != 1:
            raise ValueError("LoRA here supports ordinary convolutions (groups=1) only")
        self.base, self.rank, self.alpha, self.scale, self.merged = base, rank, alpha, alpha / rank, False
        base.requires_grad_(False)
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_channels, *base.kernel_size))  # (r, in, kh, kw)
        self.lora_B = nn.Parameter(torch.zeros(base.out_channels, rank, 1, 1))  # (out, r, 1, 1)
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    def delta_weight(self) -> torch.Tensor:
        """The update (alpha/r) · B A as a convolution kernel shaped like base.weight (out, in, kh, kw)."""
        return (self.lora_B.flatten(1) @ self.lora_A.flatten(1)).reshape(self.base.weight.shape) * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if not self.merged:
            b = self.base
            low = F.conv2d(x, self.lora_A, None, b.stride, b.padding, b.dilation)  # (N, r, H', W')
            out = out + F.conv2d(low, self.lora_B) * self.scale
        return out


LORA_TYPES = (LoRALinear, LoRAConv2d)


def add_lora(model: nn.Module, rank: int = 4, alpha: float = 8.0, target: type | tuple[type, ...] = nn.Linear,
             skip=()) -> nn.Module:
    """Freeze the model (BatchNorm included), then wrap every `target` layer in a LoRA layer, in place.

    `skip`: module names (as in model.named_modules()) to leave alone, e.g. a new head you unfreeze yourself.
    """
    freeze(model)
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if full in skip or not isinstance(child, target) or isinstance(child, LORA_TYPES):
                continue
            if isinstance(child, nn.Linear):
                setattr(module, child_name, LoRALinear(child, rank, alpha))
            elif isinstance(child, nn.Conv2d):
                setattr(module, child_name, LoRAConv2d(child, rank, alpha))
            else:
                raise TypeError(f"LoRA supports nn.Linear and nn.Conv2d, not {type(child).__name__}")
    return model


def lora_layers(model: nn.Module) -> list[nn.Module]:
    """The LoRA layers of a model, in order."""
    return [m for m in model.modules() if isinstance(m, LORA_TYPES)]


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold each LoRA update into its frozen weight (W += (alpha/r) B A): same outputs, no extra inference cost."""
    with torch.no_grad():
        for layer in lora_layers(model):
            if not layer.merged:
                layer.base.weight += layer.delta_weight()
                layer.merged = True
    return model


def unmerge_lora(model: nn.Module) -> nn.Module:
    """Undo merge_lora (W -= (alpha/r) B A), e.g. to keep training the adapters or to swap them."""
    with torch.no_grad():
        for layer in lora_layers(model):
            if layer.merged:
                layer.base.weight -= layer.delta_weight()
                layer.merged = False
    return model


def unload_lora(model: nn.Module) -> nn.Module:
    """Merge, then replace each LoRA layer by its plain base layer (for export): a model with no LoRA left."""
    merge_lora(model)
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, LORA_TYPES):
                setattr(module, child_name, child.base)
    return model
