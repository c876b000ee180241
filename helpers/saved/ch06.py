"""The code Chapter 6 teaches, saved for later chapters (第6章 从零开始搭建大模型).

Generated from notebooks/ch06_base_network.ipynb (its cells tagged `save`) by scripts/save_helpers.py.
Do not edit: change the notebook, then run `make helpers`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from helpers import BACKGROUND


def random_affine(x: torch.Tensor, degrees: float = 10.0, shift: float = 2.0, scale: float = 0.1,
                  fill: float = BACKGROUND) -> torch.Tensor:
    """Rotate (±degrees), zoom (±scale) and shift (±shift pixels) each image of a batch (N, C, H, W) at random."""
    n, _, h, w = x.shape
    angle = (torch.rand(n) * 2 - 1) * math.radians(degrees)
    zoom = 1 + (torch.rand(n) * 2 - 1) * scale
    tx, ty = [(torch.rand(n) * 2 - 1) * shift * 2 / size for size in (w, h)]  # pixels -> grid units (-1..1)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1).to(x.dtype)  # (N, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # where each output pixel reads the input
    return F.grid_sample(x - fill, grid, align_corners=False) + fill  # pixels from outside become background
