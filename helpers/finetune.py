"""Fine-tuning tools (Chapter 7): freezing, discriminative learning rates, few-shot subsets and LoRA from scratch.

LoRA (Hu et al. 2021, arXiv:2106.09685) keeps a pretrained weight W frozen and learns a low-rank update:
    y = W x + (alpha / r) · B A x,     A: (r, in), B: (out, r), B starts at zero so training starts from W.
`add_lora(model, rank, alpha)` wraps every nn.Linear (and, if asked, nn.Conv2d) in place; `merge_lora` folds
B A into W so inference costs nothing extra, `unmerge_lora` takes it out again, `unload_lora` returns plain layers.

PyTorch is imported inside the functions and classes are built on first use, so `import helpers` stays fast.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch import nn

# ---------------------------------------------------------------- freezing


def _keep_batchnorm_in_eval(module: nn.Module, args) -> None:
    """Forward pre-hook: a frozen BatchNorm layer normalises with its running statistics and never updates them."""
    module.eval()


def freeze(module: nn.Module) -> nn.Module:
    """Stop training a module: requires_grad=False on its parameters; its BatchNorm layers stay in eval mode.

    The second part is what Keras does for `layer.trainable = False`. Without it, `model.train()` would let a
    "frozen" BatchNorm layer keep updating its running mean and variance from the new data.
    """
    from torch import nn

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


def count_trainable(model: nn.Module) -> int:
    """Number of parameters that an optimizer would update (requires_grad=True)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def head(model: nn.Module) -> nn.Module:
    """The model's last nn.Linear layer (its classification head)."""
    from torch import nn

    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("the model has no nn.Linear layer to use as its head")
    return linears[-1]


def reset_head(model: nn.Module, seed: int = 0) -> nn.Module:
    """Re-initialise the classification head with fresh random weights (seeded), as for a new task."""
    import torch

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        head(model).reset_parameters()
    return model


def layer_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    """Trainable parameters grouped by layer, input side first; a normalisation layer joins the layer before it."""
    from torch import nn

    norms = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)
    groups: list[list[nn.Parameter]] = []
    for m in model.modules():
        params = [p for p in m.parameters(recurse=False) if p.requires_grad]
        if not params:
            continue
        if isinstance(m, norms) and groups:
            groups[-1].extend(params)
        else:
            groups.append(params)
    return groups


def discriminative_lr(model: nn.Module, lr: float, decay: float = 0.5) -> list[dict]:
    """Optimizer parameter groups whose learning rate shrinks by `decay` per layer going down from the head.

    ULMFiT's "discriminative fine-tuning" (Howard & Ruder 2018): the head learns at `lr`, the layer below at
    lr·decay, the next at lr·decay², … Low layers hold generic features and should move least.
    """
    groups = layer_groups(model)
    n = len(groups)
    return [{"params": params, "lr": lr * decay ** (n - 1 - i)} for i, params in enumerate(groups)]


def few_shot(x: np.ndarray, y: np.ndarray, classes: Iterable[int], per_class: int, seed: int = 0):
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


def only_classes(x: np.ndarray, y: np.ndarray, classes: Iterable[int]):
    """The examples whose label is in `classes`."""
    mask = np.isin(y, list(classes))
    return x[mask], y[mask]


# ---------------------------------------------------------------- LoRA from scratch

_LORA_CLASSES: dict[str, type] = {}


def _lora_classes() -> dict[str, type]:
    """Build the LoRA layer classes once, on first use (so importing helpers does not import torch)."""
    if _LORA_CLASSES:
        return _LORA_CLASSES
    import torch
    import torch.nn.functional as F
    from torch import nn

    class LoRALinear(nn.Module):
        """A frozen nn.Linear plus a trainable low-rank update: y = base(x) + (alpha/r) · x Aᵀ Bᵀ."""

        def __init__(self, base: nn.Linear, rank: int = 4, alpha: float = 8.0):
            super().__init__()
            self.base, self.rank, self.alpha, self.scale, self.merged = base, rank, alpha, alpha / rank, False
            base.requires_grad_(False)
            self.lora_A = nn.Parameter(torch.empty(rank, base.in_features))
            self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank))  # zero: training starts from W
            nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # the same initialisation as peft

        def delta_weight(self) -> torch.Tensor:
            """The update (alpha/r) · B A, shaped like base.weight."""
            return (self.lora_B @ self.lora_A) * self.scale

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.base(x)
            if not self.merged:
                out = out + (x @ self.lora_A.T @ self.lora_B.T) * self.scale
            return out

        def extra_repr(self) -> str:
            return f"rank={self.rank}, alpha={self.alpha}, merged={self.merged}"

    class LoRAConv2d(nn.Module):
        """A frozen nn.Conv2d plus a low-rank update: conv A (in→r, same kernel) then 1×1 conv B (r→out)."""

        def __init__(self, base: nn.Conv2d, rank: int = 4, alpha: float = 8.0):
            super().__init__()
            if base.groups != 1:
                raise ValueError("LoRA here supports ordinary convolutions (groups=1) only")
            self.base, self.rank, self.alpha, self.scale, self.merged = base, rank, alpha, alpha / rank, False
            base.requires_grad_(False)
            self.lora_A = nn.Parameter(torch.empty(rank, base.in_channels, *base.kernel_size))
            self.lora_B = nn.Parameter(torch.zeros(base.out_channels, rank, 1, 1))
            nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

        def delta_weight(self) -> torch.Tensor:
            """The update (alpha/r) · B A as a convolution kernel shaped like base.weight."""
            delta = self.lora_B.flatten(1) @ self.lora_A.flatten(1)
            return delta.reshape(self.base.weight.shape) * self.scale

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.base(x)
            if not self.merged:
                b = self.base
                low = F.conv2d(x, self.lora_A, None, b.stride, b.padding, b.dilation)
                out = out + F.conv2d(low, self.lora_B) * self.scale
            return out

        def extra_repr(self) -> str:
            return f"rank={self.rank}, alpha={self.alpha}, merged={self.merged}"

    _LORA_CLASSES.update(linear=LoRALinear, conv2d=LoRAConv2d)
    return _LORA_CLASSES


def _lora_types() -> tuple[type, ...]:
    return tuple(_lora_classes().values())


def add_lora(model: nn.Module, rank: int = 4, alpha: float = 8.0, target: type | tuple[type, ...] | None = None,
             skip: Iterable[str] = ()) -> nn.Module:
    """Wrap every `target` layer (default nn.Linear) in a LoRA layer, in place; freeze everything but LoRA.

    `skip`: module names (as in model.named_modules()) to leave alone, e.g. a new head you train fully and
    unfreeze yourself afterwards. Returns the model.
    """
    from torch import nn

    classes = _lora_classes()
    target = target or nn.Linear
    skip = set(skip)
    model.requires_grad_(False)
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if full in skip or not isinstance(child, target) or isinstance(child, _lora_types()):
                continue
            if isinstance(child, nn.Linear):
                setattr(module, child_name, classes["linear"](child, rank, alpha))
            elif isinstance(child, nn.Conv2d):
                setattr(module, child_name, classes["conv2d"](child, rank, alpha))
            else:
                raise TypeError(f"LoRA supports nn.Linear and nn.Conv2d, not {type(child).__name__}")
    return model


def lora_layers(model: nn.Module) -> list[nn.Module]:
    """The LoRA layers of a model, in order."""
    return [m for m in model.modules() if isinstance(m, _lora_types())]


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold each LoRA update into its frozen weight (W += (alpha/r) B A): same outputs, no extra inference cost."""
    import torch

    with torch.no_grad():
        for layer in lora_layers(model):
            if not layer.merged:
                layer.base.weight += layer.delta_weight()
                layer.merged = True
    return model


def unmerge_lora(model: nn.Module) -> nn.Module:
    """Undo merge_lora (W -= (alpha/r) B A), e.g. to keep training the adapters or to swap them."""
    import torch

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
            if isinstance(child, _lora_types()):
                setattr(module, child_name, child.base)
    return model


# ---------------------------------------------------------------- one set of weights, two frameworks


def copy_weights_to_keras(torch_model: nn.Module, keras_model: Any) -> Any:
    """Copy a PyTorch chain's Conv2d/BatchNorm/Linear weights into its Keras twin (same layers, same order).

    Handles the layout differences: kernels (out, in, kh, kw) -> (kh, kw, in, out), dense (out, in) -> (in, out),
    and the first dense layer after a Flatten, whose inputs PyTorch orders (C, H, W) and Keras (H, W, C).
    """
    from torch import nn

    sources = [m for m in torch_model.modules() if isinstance(m, nn.Conv2d | nn.BatchNorm2d | nn.Linear)]
    targets = [layer for layer in keras_model.layers if layer.weights]
    if len(sources) != len(targets):
        raise ValueError(f"{len(sources)} PyTorch layers with weights but {len(targets)} Keras layers")
    channels = None  # output channels of the last convolution, to reorder the first dense layer's inputs
    for src, dst in zip(sources, targets, strict=True):
        t = {k: v.detach().cpu().numpy() for k, v in src.state_dict().items()}
        if isinstance(src, nn.Conv2d):
            weights = [t["weight"].transpose(2, 3, 1, 0)] + ([t["bias"]] if "bias" in t else [])
            channels = src.out_channels
        elif isinstance(src, nn.BatchNorm2d):
            weights = [t["weight"], t["bias"], t["running_mean"], t["running_var"]]
        else:
            w = t["weight"]
            if channels is not None:  # inputs come from a flattened (C, H, W) feature map
                side = int(round((w.shape[1] // channels) ** 0.5))
                w = w.reshape(w.shape[0], channels, side, side).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
                channels = None
            weights = [w.T, t["bias"]]
        if [tuple(a.shape) for a in weights] != [tuple(v.shape) for v in dst.weights]:
            raise ValueError(f"{type(src).__name__} -> {dst.name}: shapes {[a.shape for a in weights]} "
                             f"do not fit {[tuple(v.shape) for v in dst.weights]}")
        dst.set_weights(weights)
    return keras_model


# ---------------------------------------------------------------- "pretrained" models the course trains itself


def pretrained_on_digits(classes: Sequence[int] = (0, 1, 2, 3, 4), epochs: int = 3, images: int | None = None,
                         seed: int = 0, retrain: bool = False, progress: bool = True) -> tuple[nn.Module, dict]:
    """The course CNN pretrained on the training images of some digits only (cached; see cached_model).

    Chapter 7's "large pretrained model": trained on digits 0-4, then adapted to 5-9 with few labels.
    `images` caps the number of training images (None: all of those digits). Returns (model, record).
    """
    recipe = {"model": "torch_cnn(width=16, dropout=0.1)", "classes": [int(c) for c in classes], "epochs": epochs,
              "images": images, "batch_size": 128, "max_lr": 3e-3, "weight_decay": 5e-4, "augment": "random_affine",
              "seed": seed}

    def train(model: nn.Module) -> dict:
        import torch

        from .core import seed_everything
        from .data import load_mnist, subset, torch_loader
        from .train import evaluate, fit, one_cycle, random_affine

        seed_everything(seed)
        (x_train, y_train), (x_test, y_test) = load_mnist(progress=progress)
        x, y = subset(*only_classes(x_train, y_train, classes), images, seed=seed)
        loader = torch_loader(x, y, batch_size=recipe["batch_size"], shuffle=True, seed=seed)
        optimizer = torch.optim.AdamW(model.parameters(), lr=recipe["max_lr"], weight_decay=recipe["weight_decay"])
        start = time.perf_counter()
        fit(model, loader, epochs=epochs, optimizer=optimizer, augment=random_affine, progress=progress,
            scheduler=one_cycle(optimizer, recipe["max_lr"], epochs, len(loader)))
        seconds = time.perf_counter() - start
        _, acc = evaluate(model, torch_loader(*only_classes(x_test, y_test, classes), batch_size=1000))
        return {"train_images": len(y), "train_seconds": round(seconds, 1), "test_accuracy": round(acc, 6)}

    from .models import cached_model, torch_cnn

    digits = "".join(str(c) for c in classes)
    return cached_model(f"ch07_cnn_digits{digits}", recipe, lambda: torch_cnn(16, 0.1), train, retrain)
