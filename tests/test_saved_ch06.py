"""Chapter 6's saved random_affine (helpers.saved.ch06): shapes, identity at zero strength, background fill."""

from __future__ import annotations

import torch
from test_train import fake_data

from helpers.saved.ch06 import random_affine


def test_random_affine_keeps_shape_background_and_mass():
    torch.manual_seed(0)
    x = torch.from_numpy(fake_data(8)[0]).float().unsqueeze(1)
    fill = float(x.min())
    out = random_affine(x, fill=fill)
    assert out.shape == x.shape and not torch.equal(out, x)
    assert torch.allclose(random_affine(x, degrees=0, shift=0, scale=0, fill=fill), x, atol=1e-4)
    blank = torch.full((2, 1, 28, 28), -0.5)
    assert torch.allclose(random_affine(blank, fill=-0.5), blank)  # no black border is invented
