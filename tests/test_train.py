"""The training loop: loss falls, early stopping, checkpoint round trip, exact resume, augmentation, ONNX export."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import models, torch_loader, train


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
    import torch

    torch.manual_seed(seed)
    x, y = fake_data()
    model = models.torch_cnn(width=4)
    loader = torch_loader(x, y, batch_size=64, shuffle=True, seed=seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    scheduler = train.one_cycle(optimizer, 3e-3, 4, len(loader))
    history = train.fit(model, loader, epochs=epochs, optimizer=optimizer, scheduler=scheduler,
                        augment=train.random_affine, checkpoint=checkpoint, resume=resume, progress=False)
    return model, history


def test_loss_falls_on_a_small_batch():
    import torch

    torch.manual_seed(0)
    x, y = fake_data(64)
    model = models.torch_mlp(hidden=(64,), dropout=0.0)
    loader = torch_loader(x, y, batch_size=64)
    history = train.fit(model, loader, loader, epochs=30, optimizer=torch.optim.Adam(model.parameters(), 3e-3),
                        progress=False)
    assert history.train_loss[-1] < 0.1 * history.train_loss[0]
    assert history.val_acc[-1] == 1.0 and len(history.seconds) == 30 and history.train_seconds > 0


def test_checkpoint_round_trip_and_resume_give_identical_weights(tmp_path):
    import torch

    straight, h_straight = small_run(4)
    ckpt = tmp_path / "run" / "last.pt"
    small_run(2, checkpoint=ckpt)  # "interrupted" after 2 of 4 epochs
    assert ckpt.exists() and not list(ckpt.parent.glob("*.part"))
    resumed, h_resumed = small_run(4, checkpoint=ckpt, resume=True, seed=123)  # other seed: state must come from disk
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert h_resumed.epoch == [1, 2, 3, 4] and h_resumed.train_loss == h_straight.train_loss

    fresh = models.torch_cnn(width=4)
    state = train.load_checkpoint(ckpt, fresh)
    assert state["epoch"] == 4
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), resumed.state_dict().values(),
                                                 strict=True))


def test_early_stopping_restores_the_best_weights():
    import torch

    torch.manual_seed(0)
    x, y = fake_data(128)
    model = models.torch_mlp(hidden=(32,), dropout=0.0)
    train_loader = torch_loader(x[:64], y[:64], batch_size=32)
    val_loader = torch_loader(x[64:], 9 - y[64:], batch_size=64)  # wrong labels: validation only gets worse
    history = train.fit(model, train_loader, val_loader, epochs=50, patience=2, progress=False,
                        optimizer=torch.optim.Adam(model.parameters(), 1e-2))
    assert len(history.epoch) < 50
    best = int(np.argmax(history.val_acc))
    assert train.evaluate(model, val_loader)[1] == pytest.approx(history.val_acc[best])


def test_random_affine_keeps_shape_background_and_mass():
    import torch

    torch.manual_seed(0)
    x = torch.from_numpy(fake_data(8)[0]).float().unsqueeze(1)
    fill = float(x.min())
    out = train.random_affine(x, fill=fill)
    assert out.shape == x.shape and not torch.equal(out, x)
    assert torch.allclose(train.random_affine(x, degrees=0, shift=0, scale=0, fill=fill), x, atol=1e-4)
    blank = torch.full((2, 1, 28, 28), -0.5)
    assert torch.allclose(train.random_affine(blank, fill=-0.5), blank)  # no black border is invented


def test_predict_proba_from_tensor_and_loader_agree():
    import torch

    x, y = fake_data(50)
    model = models.torch_cnn(width=4).eval()
    loader = torch_loader(x, y, batch_size=16)
    images = torch.cat([b for b, _ in loader])
    a, b = train.predict_proba(model, images, batch_size=7), train.predict_proba(model, loader)
    assert a.shape == (50, 10) and np.allclose(a, b, atol=1e-6) and np.allclose(a.sum(1), 1, atol=1e-5)


def test_onnx_export_equals_pytorch(tmp_path):
    import onnxruntime as ort
    import torch

    torch.manual_seed(0)
    model = models.torch_cnn(width=4).eval()
    path = train.export_onnx(model, tmp_path / "cnn.onnx")
    x = torch.randn(5, 1, 28, 28)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"images": x.numpy()})
    with torch.no_grad():
        expected = model(x).numpy()
    assert out.shape == (5, 10) and np.abs(out - expected).max() < 1e-5


def test_ema_follows_the_weights_with_a_warming_decay():
    import torch

    torch.manual_seed(0)
    model = models.torch_cnn(width=4)
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
