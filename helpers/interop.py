"""One set of weights, two frameworks: copy a trained PyTorch network into its Keras twin (Chapters 7 and 8)."""

from __future__ import annotations

from typing import Any

from torch import nn


def copy_weights_to_keras(torch_model: nn.Module, keras_model: Any) -> Any:
    """Copy a PyTorch chain's Conv2d/BatchNorm/Linear weights into its Keras twin (same layers, same order).

    Handles the layout differences: kernels (out, in, kh, kw) -> (kh, kw, in, out), dense (out, in) -> (in, out),
    and the first dense layer after a Flatten, whose inputs PyTorch orders (C, H, W) and Keras (H, W, C).
    """
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
