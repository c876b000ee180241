"""Run mode, seeding, device choice, the framework adapters and the digit grid."""

from __future__ import annotations

import random

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import helpers
from helpers import by_mode, data, describe_mode, mode, seed_everything, split_train_val, subset


def test_mode_defaults_to_full_and_reads_the_variable(monkeypatch):
    monkeypatch.delenv("COURSE_MODE", raising=False)
    assert mode() == "full" and by_mode(full=5, quick=1) == 5
    monkeypatch.setenv("COURSE_MODE", "Quick")
    assert mode() == "quick" and by_mode(full=5, quick=1) == 1
    assert describe_mode(training_images=60000, epochs=5) == "quick mode: 60,000 training images · 5 epochs"
    monkeypatch.setenv("COURSE_MODE", "fast")
    with pytest.raises(ValueError, match="COURSE_MODE='fast' is not a run mode"):
        mode()


def draw() -> list[float]:
    import keras
    import torch

    return [random.random(), float(np.random.rand()), float(torch.rand(1)), float(keras.random.uniform((1,))[0])]


def test_seed_everything_makes_every_generator_repeat():
    helpers.quiet_tensorflow()
    import torch  # noqa: F401 - seed_everything seeds the frameworks that are imported

    assert seed_everything(7) == ["random", "numpy", "torch", "keras"]
    first = draw()
    seed_everything(7)
    assert draw() == first
    seed_everything(8)
    assert all(a != b for a, b in zip(draw(), first, strict=True))


def test_device_prefers_cuda_then_mps_then_the_cpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert helpers.device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert helpers.device() == torch.device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert helpers.device() == torch.device("cpu")


def test_repo_root_from_the_working_tree_or_the_variable(monkeypatch, tmp_path):
    from helpers import core

    root = core.repo_root()
    assert (root / "requirements.txt").is_file() and (root / "notebooks").is_dir()
    monkeypatch.setenv("COURSE_ROOT", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="COURSE_ROOT"):
        core.repo_root()  # an empty folder is no course
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "requirements.txt").write_text("")
    assert core.repo_root() == tmp_path.resolve()
    monkeypatch.delenv("COURSE_ROOT")
    monkeypatch.setattr(core, "__file__", str(tmp_path / "site-packages" / "helpers" / "core.py"))
    monkeypatch.chdir(tmp_path / "notebooks")  # a plain install: found from the current folder upwards
    assert core.repo_root() == tmp_path.resolve()
    monkeypatch.chdir("/")
    with pytest.raises(FileNotFoundError, match="outside the course"):
        core.repo_root()


def test_count_params_for_torch_and_trainable_only():
    from torch import nn

    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    assert helpers.count_params(model) == 16 + 8 + 10  # BatchNorm's running statistics are buffers, not counted
    model[0].requires_grad_(False)
    assert helpers.count_params(model) == 34 and helpers.count_params(model, trainable_only=True) == 18


def test_import_helpers_loads_no_framework_until_asked():
    import subprocess
    import sys

    code = ("import sys, helpers; before = sorted({'torch', 'tensorflow', 'keras'} & set(sys.modules)); "
            "helpers.torch_loader; print(before, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] True"


def test_split_is_seeded_disjoint_and_complete():
    x = np.arange(100)[:, None]
    y = np.arange(100)
    (xt, yt), (xv, yv) = split_train_val(x, y, val_size=20, seed=1)
    assert len(yv) == 20 and len(yt) == 80 and sorted(np.concatenate([yt, yv]).tolist()) == list(range(100))
    (_, yt2), (_, yv2) = split_train_val(x, y, val_size=20, seed=1)
    assert (yv2 == yv).all() and (yt2 == yt).all()
    (_, _), (_, yv3) = split_train_val(x, y, val_size=20, seed=2)
    assert not (yv3 == yv).all()
    with pytest.raises(ValueError):
        split_train_val(x, y, val_size=100)
    xs, ys = subset(x, y, 10, seed=0)
    assert len(ys) == 10 and (xs[:, 0] == ys).all() and subset(x, y, None)[1] is y


def fake_images(n=6):
    return np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8), np.arange(n, dtype=np.uint8) % 10


def test_normalize_uses_the_training_statistics():
    x = np.array([[0, 255]], dtype=np.uint8)
    np.testing.assert_allclose(data.normalize(x), [[-data.MEAN / data.STD, (1 - data.MEAN) / data.STD]], rtol=1e-6)


def test_torch_loader_shapes_normalisation_and_seeded_shuffle():
    x, y = fake_images()
    images, labels = next(iter(helpers.torch_loader(x, y, batch_size=4)))
    assert tuple(images.shape) == (4, 1, 28, 28) and str(labels.dtype) == "torch.int64"
    np.testing.assert_allclose(images[0, 0].numpy(), data.normalize(x[0]), rtol=1e-6)
    flat, _ = next(iter(helpers.torch_loader(x, y, batch_size=4, flatten=True)))
    assert tuple(flat.shape) == (4, 784)
    order = [lab.tolist() for _, lab in helpers.torch_loader(x, y, batch_size=6, shuffle=True, seed=3)]
    again = [lab.tolist() for _, lab in helpers.torch_loader(x, y, batch_size=6, shuffle=True, seed=3)]
    assert order == again and sorted(order[0]) == y.tolist()


def test_tf_dataset_shapes_and_values():
    x, y = fake_images()
    images, labels = next(iter(helpers.tf_dataset(x, y, batch_size=4)))
    assert tuple(images.shape) == (4, 28, 28, 1) and labels.numpy().tolist() == y[:4].tolist()
    np.testing.assert_allclose(images.numpy()[0, ..., 0], data.normalize(x[0]), rtol=1e-6)
    flat, _ = next(iter(helpers.tf_dataset(x, y, batch_size=4, flatten=True, shuffle=True)))
    assert tuple(flat.shape) == (4, 784)


def test_show_digits_marks_wrong_predictions_in_red():
    x, y = fake_images(12)
    predictions = y.copy()
    predictions[3] = (y[3] + 1) % 10
    helpers.use_style()
    fig = helpers.show_digits(x, y, predictions, ncols=5, title="test")
    axes = fig.axes
    assert len(axes) == 15 and sum(ax.has_data() for ax in axes) == 12
    assert axes[3].get_title() == f"{predictions[3]} ({y[3]})" and axes[3].title.get_color() == "red"
    assert axes[0].get_title() == str(y[0]) and axes[0].title.get_color() == "black"


def test_quiet_tensorflow_keeps_stderr_working(capfd):
    helpers.quiet_tensorflow()
    import os

    os.write(2, b"still here\n")
    assert "still here" in capfd.readouterr().err


def test_atomic_file_replaces_only_on_success(tmp_path):
    from helpers.core import atomic_file

    target = tmp_path / "sub" / "model.bin"
    with atomic_file(target) as out:
        out.write(b"first")
    assert target.read_bytes() == b"first"
    with pytest.raises(RuntimeError), atomic_file(target) as out:
        out.write(b"half of the second")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"first"  # the old file survives a failed write
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.bin"]  # no temporary file left behind
