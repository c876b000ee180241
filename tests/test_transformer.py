"""Chapter 10's attention from scratch (checked against PyTorch) and the small Transformers built on it."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import transformer


def test_attention_weights_are_distributions_and_causal():
    rng = np.random.default_rng(0)
    q, k, v = rng.normal(size=(3, 2, 5, 8))
    out, w = transformer.attention(q, k, v, transformer.causal_mask(5))
    assert out.shape == (2, 5, 8) and np.allclose(w.sum(-1), 1)
    assert np.all(w[:, np.triu_indices(5, 1)[0], np.triu_indices(5, 1)[1]] == 0)
    assert np.allclose(out[:, 0], v[:, 0])  # the first position can only look at itself


@pytest.mark.parametrize("causal", [False, True])
def test_multi_head_attention_equals_torch(causal):
    import torch

    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(16, 4, batch_first=True).double()
    x = np.random.default_rng(1).normal(size=(2, 6, 16))
    mask = transformer.causal_mask(6) if causal else None
    ours, weights = transformer.multi_head_attention(
        x, x, x, mha.in_proj_weight.detach().numpy(), mha.in_proj_bias.detach().numpy(),
        mha.out_proj.weight.detach().numpy(), mha.out_proj.bias.detach().numpy(), heads=4, mask=mask)
    t = torch.from_numpy(x)
    theirs, their_w = mha(t, t, t, attn_mask=None if mask is None else torch.from_numpy(~mask),
                          average_attn_weights=False)
    assert np.abs(ours - theirs.detach().numpy()).max() < 1e-12
    assert np.abs(weights - their_w.detach().numpy()).max() < 1e-12


def test_sinusoidal_positions_and_patchify():
    pe = transformer.sinusoidal_positions(10, 6)
    assert pe.shape == (10, 6) and np.allclose(pe[0, 0::2], 0) and np.allclose(pe[0, 1::2], 1)
    images = np.arange(2 * 28 * 28).reshape(2, 1, 28, 28)
    patches = transformer.patchify(images, 7)
    assert patches.shape == (2, 16, 49)
    assert np.array_equal(patches[1, 5].reshape(7, 7), images[1, 0, 7:14, 7:14])  # patch 5 = row 1, column 1


def test_torch_vit_shapes_and_size():
    import torch

    model = transformer.torch_vit()
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert sum(p.numel() for p in model.parameters()) == 138_890


def test_torch_gpt_is_causal_and_generates():
    import torch

    torch.manual_seed(0)
    model = transformer.torch_gpt(vocab=12, context=9).eval()
    ids = torch.randint(0, 12, (2, 9))
    changed = ids.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 12
    with torch.no_grad():
        assert torch.allclose(model(ids)[:, :-1], model(changed)[:, :-1], atol=1e-6)  # the future is invisible
    assert model.generate(ids[:, :6], 3).shape == (2, 9)


def test_keras_vit_matches_torch_size():
    model = transformer.keras_vit()
    assert model.count_params() == 138_890
    assert model(np.zeros((2, 28, 28, 1), np.float32)).shape == (2, 10)
