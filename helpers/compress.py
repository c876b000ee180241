"""Model compression (Chapter 7.4): pruning, int8 quantization in PyTorch, distillation, and how to measure the
result (size on disk, non-zero parameters, CPU latency and throughput). ONNX and TFLite live in helpers.export.

PyTorch's int8 route, as it stands with the course's pinned versions: `torch.ao.quantization` (eager mode and FX
graph mode) still works in torch 2.13 but warns that it is deprecated in favour of the separate `torchao`
package; its PT2E flow has already moved there. We use FX graph mode for static quantization (no hand-edited
model, fusion is automatic) and `quantize_dynamic` for linear layers, and silence only those deprecation
messages here (Chapter 7 shows them once).
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import io
import statistics
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.ao.quantization import get_default_qconfig_mapping
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
from torch.nn.utils import prune

from .core import atomic_file

# ---------------------------------------------------------------- counting and sizes


def _weights(model: nn.Module) -> Iterator[tuple[nn.Module, str, torch.Tensor]]:
    """(module, name, tensor) for every parameter; a pruned weight is seen through its mask (weight_orig*mask)."""
    for m in model.modules():
        for name, p in m.named_parameters(recurse=False):
            if name.endswith("_orig"):
                name = name[: -len("_orig")]
                yield m, name, getattr(m, name)
            else:
                yield m, name, p


def count_nonzero(model: nn.Module) -> int:
    """Number of parameters that are not exactly zero (what pruning reduces)."""
    return sum(int((t != 0).sum()) for _, _, t in _weights(model))


def sparsity(model: nn.Module, types: tuple[type, ...] | None = None) -> float:
    """Fraction of zero weights in the layers of `types` (default: Conv2d and Linear weights, biases excluded)."""

    types = types or (nn.Conv2d, nn.Linear)
    zeros = total = 0
    for m, name, t in _weights(model):
        if isinstance(m, types) and name == "weight":
            zeros += int((t == 0).sum())
            total += t.numel()
    return zeros / total if total else 0.0


def torch_bytes(model: nn.Module) -> bytes:
    """The model's state_dict as torch.save writes it (fp32 weights, or packed int8 for a quantized model)."""

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


def save_bytes(data: bytes, path: str | Path) -> Path:
    """Write bytes to a file atomically (temporary file, then rename); returns the path."""
    with atomic_file(path) as out:
        out.write(data)
    return Path(path)


def gzip_size(data: bytes) -> int:
    """Size in bytes after gzip (level 9): shows how much a sparse model could shrink with compression."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


# ---------------------------------------------------------------- timing


def median_time(fn: Callable[..., Any], *args: Any, repeats: int = 30, warmup: int = 3,
                min_seconds: float = 0.0) -> float:
    """Median wall-clock seconds of fn(*args) over `repeats` calls (at least `min_seconds` in all), after warm-up.

    The median ignores the occasional call that another process on the machine slowed down.
    """
    for _ in range(warmup):
        fn(*args)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def benchmark(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray, repeats: int = 30,
              batch: int = 256) -> dict[str, float]:
    """CPU latency at batch 1 (ms, median) and throughput at batch `batch` (images/s, from the median time)."""
    one, many = images[:1], images[:batch]
    latency = median_time(predict, one, repeats=repeats)
    per_batch = median_time(predict, many, repeats=max(3, repeats // 3))
    return {"latency_ms": latency * 1000, "throughput": len(many) / per_batch}


def torch_predictor(model: nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    """A function from a float32 array of model inputs to a NumPy array of outputs (eval mode, no autograd)."""

    model.eval()

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    return predict


def predict_batches(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray, batch: int = 500) -> np.ndarray:
    """A predictor's outputs (logits or probabilities) for many images, computed `batch` images at a time."""
    return np.concatenate([predict(images[i:i + batch]) for i in range(0, len(images), batch)])


# ---------------------------------------------------------------- pruning


def prune_global(model: nn.Module, amount: float, types: tuple[type, ...] | None = None) -> nn.Module:
    """Global magnitude pruning, in place: zero the `amount` fraction of smallest |w| over all layers' weights.

    Uses torch.nn.utils.prune, which keeps weight_orig and a mask, so the zeros stay zero while you fine-tune;
    call finalize_pruning(model) afterwards to make them permanent. On a finalized pruned model, `amount` is
    again the total fraction (its zeros are the smallest weights), so 0.5 -> 0.8 -> 0.9 prunes step by step.
    """

    types = types or (nn.Conv2d, nn.Linear)
    params = [(m, "weight") for m in model.modules() if isinstance(m, types)]
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)
    return model


def finalize_pruning(model: nn.Module) -> nn.Module:
    """Make pruning permanent: fold each mask into its weight and drop the re-parametrisation."""

    for m in model.modules():
        for name in [n[: -len("_orig")] for n, _ in m.named_parameters(recurse=False) if n.endswith("_orig")]:
            prune.remove(m, name)
    return model


def _leaves(model: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """(parent, attribute name, module) for every leaf module, depth first in registration order."""
    out = []
    for name, child in model.named_children():
        if list(child.children()):
            out += _leaves(child)
        else:
            out.append((model, name, child))
    return out


def is_chain(model: nn.Module, example: torch.Tensor) -> bool:
    """True if running the leaf modules one after another gives model(example): the model is a plain chain."""

    model.eval()
    with torch.no_grad():
        x = example
        for _, _, m in _leaves(model):
            x = m(x)
        return x.shape == model(example).shape and torch.allclose(x, model(example), atol=1e-5)


def _channel_scores(layer: nn.Module, norm: nn.Module | None) -> torch.Tensor:
    """Importance of each output channel: L1 norm of its filter, scaled by a following BatchNorm's |γ|/σ."""

    score = layer.weight.detach().abs().flatten(1).sum(1)
    if norm is not None:
        score = score * norm.weight.detach().abs() / torch.sqrt(norm.running_var + norm.eps)
    return score


def _slice_param(module: nn.Module, name: str, index: torch.Tensor, dim: int) -> None:
    """Keep only `index` along `dim` of a parameter or buffer (new tensor, same requires_grad)."""

    t = getattr(module, name)
    if t is None:
        return
    kept = t.detach().index_select(dim, index).clone()
    if isinstance(t, torch.nn.Parameter):
        setattr(module, name, torch.nn.Parameter(kept, requires_grad=t.requires_grad))
    else:
        setattr(module, name, kept)


def prune_channels(model: nn.Module, amount: float, example: torch.Tensor) -> nn.Module:
    """Structured pruning, in place: remove the `amount` fraction of least important channels of every hidden
    Conv2d (and units of every hidden Linear), so the layers really become smaller and faster.

    Works on models that are a chain of layers (checked with `example`); the last weighted layer keeps its
    outputs. Importance = L1 norm of a channel's filter times |γ|/σ of the BatchNorm after it, if any.
    """

    if not is_chain(model, example):
        raise ValueError("prune_channels needs a plain chain of layers (forward runs them one after another)")
    passthrough = (nn.ReLU, nn.ReLU6, nn.GELU, nn.MaxPool2d, nn.AvgPool2d, nn.Dropout, nn.Identity, nn.Flatten,
                   nn.AdaptiveAvgPool2d)
    leaves = [m for _, _, m in _leaves(model)]
    weighted = [i for i, m in enumerate(leaves) if isinstance(m, nn.Conv2d | nn.Linear)]
    for i, j in zip(weighted, weighted[1:], strict=False):
        layer, nxt = leaves[i], leaves[j]
        between = leaves[i + 1:j]
        norms = [m for m in between if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d)]
        if any(not isinstance(m, passthrough + (nn.BatchNorm2d, nn.BatchNorm1d)) for m in between):
            raise ValueError(f"cannot prune across {[type(m).__name__ for m in between]}")
        if isinstance(layer, nn.Conv2d) and layer.groups != 1:
            raise ValueError("grouped convolutions are not supported")
        channels = layer.weight.shape[0]
        keep_n = max(1, round(channels * (1 - amount)))
        scores = _channel_scores(layer, norms[0] if norms else None)
        keep = torch.sort(torch.topk(scores, keep_n).indices).values
        _slice_param(layer, "weight", keep, 0)
        _slice_param(layer, "bias", keep, 0)
        if isinstance(layer, nn.Conv2d):
            layer.out_channels = keep_n
        else:
            layer.out_features = keep_n
        for bn in norms:
            for name in ("weight", "bias", "running_mean", "running_var"):
                _slice_param(bn, name, keep, 0)
            bn.num_features = keep_n
        if isinstance(nxt, nn.Conv2d):
            _slice_param(nxt, "weight", keep, 1)
            nxt.in_channels = keep_n
        else:  # a Linear, maybe after Flatten: its inputs come in blocks of (height × width) per channel
            per_channel = nxt.in_features // channels
            w = nxt.weight.detach().reshape(nxt.out_features, channels, per_channel)[:, keep].reshape(
                nxt.out_features, keep_n * per_channel)
            nxt.weight = nn.Parameter(w.clone(), requires_grad=nxt.weight.requires_grad)
            nxt.in_features = keep_n * per_channel
    return model


# ---------------------------------------------------------------- distillation


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: float = 4.0, alpha: float = 0.9) -> torch.Tensor:
    """Hinton et al. (2015): alpha·T²·KL(teacher_T ‖ student_T) + (1 − alpha)·cross-entropy with the labels.

    Softening both distributions with temperature T lets the student learn the teacher's "dark knowledge"
    (which wrong classes look alike); T² keeps the gradient scale independent of T.
    """

    soft = F.kl_div(F.log_softmax(student_logits / temperature, 1), F.log_softmax(teacher_logits / temperature, 1),
                    reduction="batchmean", log_target=True)
    return alpha * temperature**2 * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)


# ---------------------------------------------------------------- PyTorch int8 quantization

_QUANT_DEPRECATIONS = (r"torch\.ao\.quantization is deprecated", r"torch\.quantize_per_tensor",
                       r"Please use quant_min and quant_max")


@contextlib.contextmanager
def _known_quantization_warnings() -> Iterator[None]:
    """Hide only torch.ao.quantization's deprecation notices (Chapter 7 shows and explains them once)."""
    with warnings.catch_warnings():
        for pattern in _QUANT_DEPRECATIONS:
            warnings.filterwarnings("ignore", message=f".*{pattern}")
        yield


def quantize_dynamic_int8(model: nn.Module, engine: str = "x86") -> nn.Module:
    """A copy with int8 weights in every nn.Linear; activations are quantized on the fly at run time."""
    torch.backends.quantized.engine = engine
    with _known_quantization_warnings():
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8)


def quantize_static_int8(model: nn.Module, calibration: Iterable[torch.Tensor], engine: str = "x86") -> nn.Module:
    """A copy with int8 weights and activations (FX graph mode post-training quantization, x86 backend).

    Conv-BatchNorm-ReLU are fused, observers record activation ranges on the calibration batches, then every
    layer is replaced by its int8 kernel (per-channel weights, per-tensor activations).
    """

    torch.backends.quantized.engine = engine
    batches = list(calibration)
    with _known_quantization_warnings():
        prepared = prepare_fx(copy.deepcopy(model).eval(), get_default_qconfig_mapping(engine), (batches[0],))
        with torch.inference_mode():
            for x in batches:
                prepared(x)
        return convert_fx(prepared)


def recalibrate_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor]) -> nn.Module:
    """Re-estimate every BatchNorm layer's running mean and variance from some input batches (no labels needed).

    After pruning or quantizing, a layer's outputs change and the statistics the BatchNorm after it stored
    during training no longer fit; a forward pass over a few hundred images fixes that.
    """

    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a plain average over all the batches
        m.train()
    with torch.no_grad():
        for x in batches:
            model(x)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
        m.eval()
    return model
