"""The training loop: loss falls, early stopping, checkpoint round trip, exact resume, batches from memory, the
loss_fn and callback hooks, evaluation that keeps the caller's mode, the moving average."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import train
from helpers.saved.ch06 import random_affine
from helpers.torch_models import torch_cnn, torch_mlp
from helpers.train import torch_loader


def fake_data(n=256, seed=0):
    """Random 'images' whose label is coded in a bright 4x4 patch, so a small net can learn it fast."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n).astype(np.uint8)
    x = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, label in enumerate(y):
        r, c = divmod(int(label), 5)
        x[i, 4 + 10 * r:8 + 10 * r, 3 + 5 * c:7 + 5 * c] = 255
    return x, y


def small_run(epochs, checkpoint=None, resume=False, seed=0):
    torch.manual_seed(seed)
    x, y = fake_data()
    model = torch_cnn(width=4)
    loader = torch_loader(x, y, batch_size=64, shuffle=True, seed=seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    scheduler = train.one_cycle(optimizer, 3e-3, 4, len(loader))
    history = train.fit(model, loader, epochs=epochs, optimizer=optimizer, scheduler=scheduler,
                        augment=random_affine, checkpoint=checkpoint, resume=resume, progress=False)
    return model, history


def test_loss_falls_on_a_small_batch():
    torch.manual_seed(0)
    x, y = fake_data(64)
    model = torch_mlp(hidden=(64,), dropout=0.0)
    loader = torch_loader(x, y, batch_size=64)
    history = train.fit(model, loader, loader, epochs=30, optimizer=torch.optim.Adam(model.parameters(), 3e-3),
                        progress=False)
    assert history.loss[-1] < 0.1 * history.loss[0]
    assert history.val_accuracy[-1] == 1.0 and len(history.seconds) == 30 and history.train_seconds > 0


def test_checkpoint_round_trip_and_resume_give_identical_weights(tmp_path):
    straight, h_straight = small_run(4)
    ckpt = tmp_path / "run" / "last.pt"
    small_run(2, checkpoint=ckpt)  # "interrupted" after 2 of 4 epochs
    assert ckpt.exists() and not list(ckpt.parent.glob("*.part"))
    resumed, h_resumed = small_run(4, checkpoint=ckpt, resume=True, seed=123)  # other seed: state must come from disk
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert h_resumed.epoch == [1, 2, 3, 4] and h_resumed.loss == h_straight.loss

    fresh = torch_cnn(width=4)
    state = train.load_checkpoint(ckpt, fresh)
    assert state["epoch"] == 4
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), resumed.state_dict().values(),
                                                 strict=True))


def test_early_stopping_restores_the_best_weights():
    torch.manual_seed(0)
    x, y = fake_data(128)
    model = torch_mlp(hidden=(32,), dropout=0.0)
    train_loader = torch_loader(x[:64], y[:64], batch_size=32)
    val_loader = torch_loader(x[64:], 9 - y[64:], batch_size=64)  # wrong labels: validation only gets worse
    history = train.fit(model, train_loader, val_loader, epochs=50, patience=2, progress=False,
                        optimizer=torch.optim.Adam(model.parameters(), 1e-2))
    assert len(history.epoch) < 50
    best = int(np.argmax(history.val_accuracy))
    assert train.evaluate(model, val_loader)[1] == pytest.approx(history.val_accuracy[best])


def test_predict_proba_from_tensor_and_loader_agree():
    x, y = fake_data(50)
    model = torch_cnn(width=4).eval()
    loader = torch_loader(x, y, batch_size=16)
    images = torch.cat([b for b, _ in loader])
    a, b = train.predict_proba(model, images, batch_size=7), train.predict_proba(model, loader)
    assert a.shape == (50, 10) and np.allclose(a, b, atol=1e-6) and np.allclose(a.sum(1), 1, atol=1e-5)


def test_ema_follows_the_weights_with_a_warming_decay():
    torch.manual_seed(0)
    model = torch_cnn(width=4)
    averaged = train.ema(model, decay=0.99)
    start = model.classifier[2].weight.detach().clone()
    averaged.update_parameters(model)  # the first update copies the model
    with torch.no_grad():
        model.classifier[2].weight.add_(1.0)
    averaged.update_parameters(model)  # n=1: decay min(0.99, 2/11), so the average moves 9/11 of the way
    moved = averaged.module.classifier[2].weight - start
    assert torch.allclose(moved, torch.full_like(moved, 9 / 11), atol=1e-6)
    for _ in range(2000):  # the decay reaches 0.99; a fixed model is approached geometrically
        averaged.update_parameters(model)
    assert torch.allclose(averaged.module.classifier[2].weight, model.classifier[2].weight, atol=1e-6)
    bn, bn_avg = model.features[0][1], averaged.module.features[0][1]
    before = bn.running_mean.clone()
    model.train()
    model(torch.randn(8, 1, 28, 28) + 3)  # moves BatchNorm's running statistics, which are averaged too
    averaged.update_parameters(model)
    assert torch.allclose(bn_avg.running_mean, before + 0.01 * (bn.running_mean - before), atol=1e-6)
    assert bn_avg.num_batches_tracked == bn.num_batches_tracked == 1  # counters are copied, not averaged


def test_batches_from_memory_cover_every_example_once_per_epoch_in_a_seeded_order():
    x, y = fake_data(100)
    assert [len(b[1]) for b in torch_loader(x, y, batch_size=32, shuffle=True, seed=3)] == [32, 32, 32, 4]
    loader = torch_loader(x, y, batch_size=32, shuffle=True, seed=3)
    first = torch.cat([b[1] for b in loader])
    second = torch.cat([b[1] for b in loader])
    assert sorted(first.tolist()) == sorted(y.tolist()) and not torch.equal(first, second)  # reshuffled
    again = torch.cat([b[1] for b in torch_loader(x, y, batch_size=32, shuffle=True, seed=3)])
    assert torch.equal(first, again)  # the same seed, the same order
    images, _ = next(iter(torch_loader(x, y, batch_size=5)))
    assert images.shape == (5, 1, 28, 28) and next(iter(torch_loader(x, y, flatten=True)))[0].shape == (100, 784)
    with pytest.raises(ValueError):
        train.TensorBatches(torch.zeros(3), torch.zeros(4))


def test_loss_fn_and_callback_hooks():
    torch.manual_seed(0)
    x, y = fake_data(64)
    model = torch_mlp(hidden=(16,), dropout=0.0)
    seen_batches, steps = [], []

    def loss_fn(net, batch):  # a custom loss that sees the model and the whole batch
        seen_batches.append(len(batch))
        images, labels = batch
        return F.cross_entropy(net(images), labels)

    history = train.fit(model, torch_loader(x, y, batch_size=16), epochs=2, loss_fn=loss_fn, progress=False,
                        callback=lambda step, net: steps.append(step))
    assert seen_batches == [2] * 8 and steps == list(range(1, 9))
    assert len(history.loss) == 2 and history.accuracy == []  # no logits returned: no training accuracy


def test_fit_rejects_an_unknown_scheduler_step_and_misplaced_options():
    model, loader = torch_mlp(hidden=(4,)), torch_loader(*fake_data(8))
    with pytest.raises(ValueError, match="scheduler_step"):
        train.fit(model, loader, epochs=1, scheduler_step="epochs", progress=False)
    with pytest.raises(ValueError, match="loss_fn"):
        train.fit(model, loader, epochs=1, loss_fn=lambda net, batch: 0, label_smoothing=0.1, progress=False)


def test_an_epoch_scheduler_steps_once_per_epoch():
    model, loader = torch_mlp(hidden=(4,)), torch_loader(*fake_data(64), batch_size=16)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = train.fit(model, loader, epochs=3, optimizer=optimizer, scheduler=scheduler, scheduler_step="epoch",
                        progress=False)
    assert history.lr == [0.5, 0.25, 0.125]


def test_evaluate_and_predict_keep_the_callers_mode():
    x, y = fake_data(32)
    model = torch_cnn(width=4).train()
    train.evaluate(model, torch_loader(x, y))
    train.predict_proba(model, torch_loader(x, y))
    assert model.training
    model.eval()
    train.evaluate(model, torch_loader(x, y))
    assert not model.training
