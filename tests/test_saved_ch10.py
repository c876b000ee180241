"""Chapter 10's saved Transformer (helpers.saved.ch10): attention from scratch in NumPy and PyTorch equals
torch.nn.MultiheadAttention, position encodings and patches, the ViT and GPT built from it, and the Keras twin."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import helpers

helpers.quiet_tensorflow()  # the module defines a Keras layer: import TensorFlow without its start-up log
from helpers.saved import ch10  # noqa: E402


def test_attention_weights_are_distributions_and_causal():
    rng = np.random.default_rng(0)
    q, k, v = rng.normal(size=(3, 2, 5, 8))
    out, w = ch10.attention(q, k, v, ch10.causal_mask(5))
    assert out.shape == (2, 5, 8) and np.allclose(w.sum(-1), 1)
    above = np.triu_indices(5, 1)
    assert np.all(w[:, above[0], above[1]] == 0) and np.all(w[:, np.tril_indices(5)[0], np.tril_indices(5)[1]] > 0)
    assert np.allclose(out[:, 0], v[:, 0])  # the first position can only look at itself
    _, free = ch10.attention(q, k, v)
    assert np.all(free > 0)  # without a mask every position looks everywhere


def mha_and_input(d: int = 16, heads: int = 4, t: int = 6):
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(d, heads, batch_first=True).double()
    with torch.no_grad():  # non-zero biases, so that a bias in the wrong place shows
        mha.in_proj_bias.normal_()
        mha.out_proj.bias.normal_()
    return mha, np.random.default_rng(1).normal(size=(2, t, d))


@pytest.mark.parametrize("causal", [False, True])
def test_numpy_multi_head_attention_equals_torch(causal):
    mha, x = mha_and_input()
    mask = ch10.causal_mask(6) if causal else None
    ours, weights = ch10.multi_head_attention(
        x, mha.in_proj_weight.detach().numpy(), mha.in_proj_bias.detach().numpy(),
        mha.out_proj.weight.detach().numpy(), mha.out_proj.bias.detach().numpy(), heads=4, mask=mask)
    t = torch.from_numpy(x)
    theirs, their_w = mha(t, t, t, attn_mask=None if mask is None else torch.from_numpy(~mask),
                          average_attn_weights=False)
    assert np.abs(ours - theirs.detach().numpy()).max() < 1e-12
    assert np.abs(weights - their_w.detach().numpy()).max() < 1e-12


@pytest.mark.parametrize("causal", [False, True])
def test_torch_self_attention_equals_torch_and_keeps_its_weights(causal):
    mha, x = mha_and_input()
    ours = ch10.SelfAttention(16, 4, causal=causal).double()
    ours.load_state_dict({"qkv.weight": mha.in_proj_weight, "qkv.bias": mha.in_proj_bias,
                          "out.weight": mha.out_proj.weight, "out.bias": mha.out_proj.bias})
    t = torch.from_numpy(x)
    mask = torch.ones(6, 6, dtype=torch.bool).triu(1) if causal else None
    with torch.no_grad():
        theirs, their_w = mha(t, t, t, attn_mask=mask, average_attn_weights=False)
        assert (ours(t) - theirs).abs().max() < 1e-12
    assert ours.last_weights.shape == (2, 4, 6, 6) and (ours.last_weights - their_w).abs().max() < 1e-12


def test_sinusoidal_positions_and_patchify():
    pe = ch10.sinusoidal_positions(10, 6)
    assert pe.shape == (10, 6) and np.allclose(pe[0, 0::2], 0) and np.allclose(pe[0, 1::2], 1)
    assert np.allclose(pe[3, 0], np.sin(3)) and np.allclose(pe[3, 3], np.cos(3 / 10000 ** (2 / 6)))
    images = np.arange(2 * 28 * 28).reshape(2, 28, 28)
    patches = ch10.patchify(images, 7)
    assert patches.shape == (2, 16, 49)
    assert np.array_equal(patches[1, 6].reshape(7, 7), images[1, 7:14, 14:21])  # patch 6 = row 1, column 2


def test_torch_vit_shapes_size_and_patch_order():
    torch.manual_seed(0)
    model = ch10.torch_vit().eval()
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        logits = model(x)
        assert logits.shape == (3, 10)
        assert helpers.count_params(model) == 138_890
        # shuffle the patches (cut by the NumPy patchify) and the position table the same way: the output stays,
        # so the model cuts its patches in patchify's order and is otherwise blind to order
        perm = np.random.default_rng(0).permutation(16)
        shuffled = ch10.patchify(x[:, 0].numpy(), 7)[:, perm].reshape(3, 4, 4, 7, 7).transpose(0, 1, 3, 2, 4)
        model.positions.data = model.positions.data[:, perm]
        moved = model(torch.from_numpy(shuffled.reshape(3, 1, 28, 28).copy()))
    assert torch.allclose(moved, logits, atol=1e-5)


def test_torch_gpt_is_causal_and_generates_greedily():
    torch.manual_seed(0)
    model = ch10.torch_gpt(vocab=12, context=9).eval()
    ids = torch.randint(0, 12, (2, 9))
    changed = ids.clone()
    changed[:, 4] = (changed[:, 4] + 1) % 12
    with torch.no_grad():
        before, after = model(ids), model(changed)
    assert before.shape == (2, 9, 12)
    assert torch.allclose(before[:, :4], after[:, :4], atol=1e-6)  # the future is invisible
    assert not torch.allclose(before[:, 4:], after[:, 4:], atol=1e-3)  # the present and after do see it
    out = model.generate(ids[:, :6], 5)  # 11 tokens: the model only ever reads the last 9
    assert out.shape == (2, 11) and torch.equal(out[:, :6], ids[:, :6])
    with torch.no_grad():
        assert torch.equal(out[:, 6], model(ids[:, :6])[:, -1].argmax(-1))
        assert torch.equal(out[:, 10], model(out[:, 1:10])[:, -1].argmax(-1))


def torch_weights_in_keras_layout(vit: ch10.TinyViT) -> list[np.ndarray]:
    """TinyViT's weights in the order and layout of keras_vit's: kernels transposed, attention split by head."""
    d, h = vit.embed.out_features, vit.blocks[0].attention.heads
    out = [vit.embed.weight.T, vit.embed.bias, vit.positions]
    for block in vit.blocks:
        att = block.attention
        out += [block.norm1.weight, block.norm1.bias]
        for w, b in zip(att.qkv.weight.chunk(3), att.qkv.bias.chunk(3), strict=True):  # query, key, value
            out += [w.T.reshape(d, h, d // h), b.reshape(h, d // h)]
        out += [att.out.weight.T.reshape(h, d // h, d), att.out.bias, block.norm2.weight, block.norm2.bias]
        out += [block.mlp[0].weight.T, block.mlp[0].bias, block.mlp[2].weight.T, block.mlp[2].bias]
    out += [vit.norm.weight, vit.norm.bias, vit.head.weight.T, vit.head.bias]
    return [w.detach().numpy() for w in out]


def test_keras_vit_is_torch_vit_twin_and_reloads(tmp_path):
    keras = pytest.importorskip("keras")
    torch.manual_seed(0)
    vit, model = ch10.torch_vit().eval(), ch10.keras_vit()
    assert helpers.count_params(model) == helpers.count_params(vit)
    model.set_weights(torch_weights_in_keras_layout(vit))
    x = np.random.default_rng(0).normal(size=(2, 28, 28, 1)).astype(np.float32)
    probs = np.asarray(model(x))
    with torch.no_grad():
        expected = vit(torch.from_numpy(x).permute(0, 3, 1, 2)).softmax(-1).numpy()
    assert np.abs(probs - expected).max() < 1e-5  # the same network: same weights, same probabilities
    model.save(tmp_path / "vit.keras")  # AddPositions is registered, so the saved model loads without help
    assert np.allclose(np.asarray(keras.models.load_model(tmp_path / "vit.keras")(x)), probs, atol=1e-6)
