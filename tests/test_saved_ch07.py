"""Chapter 7's saved fine-tuning code (helpers.saved.ch07): freezing keeps weights and BatchNorm statistics
bit-identical, LoRA merges exactly and leaves the base model untouched, discriminative learning rates decay towards
the input, few-shot subsets are balanced."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from helpers import count_params
from helpers.saved import ch07 as finetune


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 16), nn.ReLU(),
                         nn.Linear(16, 10))


def train_a_little(model: nn.Module, steps: int = 5) -> None:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)  # frozen ones too: no grad, no step
    model.train()
    for step in range(steps):
        x, y = torch.randn(16, 1, 8, 8) + step, torch.randint(0, 10, (16,))
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_frozen_weights_and_batchnorm_statistics_stay_bit_identical():
    model = small_cnn()
    features = model[:6]
    finetune.freeze(features)
    before = {k: v.clone() for k, v in features.state_dict().items()}
    head_before = model[-1].weight.clone()
    train_a_little(model)
    for key, value in features.state_dict().items():
        assert torch.equal(value, before[key]), f"{key} changed although frozen"
    assert not torch.equal(model[-1].weight, head_before), "the unfrozen head did not train"
    assert count_params(model, trainable_only=True) == sum(p.numel() for p in model[6:].parameters())


def test_unfreeze_restores_training_and_batchnorm_updates():
    model = small_cnn()
    finetune.unfreeze(finetune.freeze(model))
    assert count_params(model, trainable_only=True) == sum(p.numel() for p in model.parameters())
    mean = model[1].running_mean.clone()
    train_a_little(model, steps=1)
    assert not torch.equal(model[1].running_mean, mean)


def test_head_and_reset_head():
    model = small_cnn()
    assert finetune.head(model) is model[-1]
    before = model[-1].weight.clone()
    finetune.reset_head(model, seed=1)
    after = model[-1].weight.clone()
    finetune.reset_head(model, seed=1)
    assert not torch.equal(before, after) and torch.equal(after, model[-1].weight)


def test_discriminative_lr_decays_towards_the_input_and_covers_every_parameter():
    model = small_cnn()
    groups = finetune.discriminative_lr(model, lr=1e-3, decay=0.5)
    assert [g["lr"] for g in groups] == pytest.approx([1e-3 * 0.5**k for k in (3, 2, 1, 0)])
    assert len(groups[0]["params"]) == 3  # the first conv and its BatchNorm share a rate
    assert sum(p.numel() for g in groups for p in g["params"]) == sum(p.numel() for p in model.parameters())


def test_few_shot_is_balanced_seeded_and_only_asked_classes():
    y = np.repeat(np.arange(10), 30)
    x = np.arange(len(y))
    xs, ys = finetune.few_shot(x, y, range(5, 10), 7, seed=3)
    assert np.bincount(ys, minlength=10).tolist() == [0] * 5 + [7] * 5 and (y[xs] == ys).all()
    assert np.array_equal(finetune.few_shot(x, y, range(5, 10), 7, seed=3)[0], xs)
    with pytest.raises(ValueError):
        finetune.few_shot(x, y, [0], 31)
    xo, yo = finetune.only_classes(x, y, [1, 2])
    assert set(yo.tolist()) == {1, 2} and len(xo) == 60


@pytest.mark.parametrize("target", [nn.Linear, (nn.Linear, nn.Conv2d)])
def test_lora_starts_at_the_base_model_merges_and_unmerges_exactly(target):
    model = small_cnn().eval()
    x = torch.randn(5, 1, 8, 8)
    reference = model(x).detach()
    finetune.add_lora(model, rank=2, alpha=4, target=target)
    assert torch.allclose(model(x), reference)  # B = 0: the adapted model starts as the pretrained one
    for layer in finetune.lora_layers(model):
        nn.init.normal_(layer.lora_B, std=0.5)  # pretend training moved B
    adapted = model(x).detach()
    assert not torch.allclose(adapted, reference, atol=1e-3)
    finetune.merge_lora(model)
    torch.testing.assert_close(model(x), adapted, atol=1e-5, rtol=1e-5)
    finetune.unmerge_lora(model)
    torch.testing.assert_close(model(x), adapted, atol=1e-5, rtol=1e-5)
    plain = finetune.unload_lora(model)
    assert not finetune.lora_layers(plain)
    torch.testing.assert_close(plain(x), adapted, atol=1e-5, rtol=1e-5)


def test_lora_trains_only_the_adapters_and_skips_what_it_is_told():
    model = small_cnn()
    base = {k: v.clone() for k, v in model.state_dict().items()}
    finetune.add_lora(model, rank=2, alpha=2, skip=["9"])
    finetune.unfreeze(model[9])
    layers = finetune.lora_layers(model)
    assert len(layers) == 1 and model[7] is layers[0]  # only the hidden Linear; the head was skipped
    assert count_params(model, trainable_only=True) == 2 * (128 + 16) + 16 * 10 + 10
    train_a_little(model)
    state = model.state_dict()
    assert torch.equal(state["7.base.weight"], base["7.weight"]) and torch.equal(state["0.weight"], base["0.weight"])
    assert not torch.equal(state["7.lora_B"], torch.zeros_like(state["7.lora_B"]))


def test_unfreeze_works_on_a_deep_copy_of_a_frozen_model():
    import copy

    model = copy.deepcopy(finetune.freeze(small_cnn()))
    finetune.unfreeze(model)
    mean = model[1].running_mean.clone()
    train_a_little(model, steps=1)
    assert not torch.equal(model[1].running_mean, mean)


def test_lora_keeps_the_base_model_batchnorm_included_bit_identical():
    model = small_cnn()
    base = {k: v.clone() for k, v in model.state_dict().items()}
    finetune.add_lora(model, rank=2, alpha=4, target=nn.Conv2d)
    finetune.unfreeze(finetune.head(model))
    train_a_little(model)
    state = model.state_dict()
    assert torch.equal(state["1.running_mean"], base["1.running_mean"])  # BatchNorm did not re-estimate its statistics
    assert torch.equal(state["1.running_var"], base["1.running_var"])
    assert torch.equal(state["0.base.weight"], base["0.weight"])
    finetune.merge_lora(model)
    assert not torch.equal(state["0.base.weight"], base["0.weight"])  # merging is the only change to the base
