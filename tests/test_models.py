"""Model builders: shapes, parameter counts, and the pretrained-CNN cache (checksum, atomic write, retraining)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import models


@pytest.mark.parametrize(("build", "params"), [
    (models.torch_mlp, 535_818), (models.torch_cnn, 101_050), (models.torch_lstm, 82_186),
    (models.torch_official_cnn, 1_199_882),
])
def test_torch_models_map_images_to_ten_logits(build, params):
    import torch

    model = build()
    assert models.count_params(model) == params
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


@pytest.mark.parametrize(("build", "params"), [
    (models.keras_mlp, 535_818), (models.keras_cnn, 101_050),
    (models.keras_lstm, 81_674),  # PyTorch's LSTM has two bias vectors per gate, Keras one: 512 fewer
    (models.keras_official_cnn, 34_826),
])
def test_keras_models_match_their_torch_twins(build, params):
    model = build()
    assert models.count_params(model) == params
    out = model.predict(np.zeros((3, 28, 28, 1), np.float32), verbose=0)
    assert out.shape == (3, 10) and np.allclose(out.sum(1), 1, atol=1e-5)  # softmax probabilities


def test_keras_augmentation_is_identity_at_inference_and_random_in_training():
    import keras

    x = np.random.default_rng(0).normal(size=(4, 28, 28, 1)).astype(np.float32)
    augment = models.keras_augmentation()
    keras.utils.set_random_seed(0)
    assert np.allclose(keras.ops.convert_to_numpy(augment(x, training=False)), x)
    assert not np.allclose(keras.ops.convert_to_numpy(augment(x, training=True)), x)


def test_lstm_reads_rows_as_time_steps():
    import torch

    model = models.torch_lstm(hidden=8)
    x = torch.randn(2, 1, 28, 28)
    rows = x.reshape(2, 28, 28)
    out, _ = model.lstm(rows)
    assert torch.allclose(model(x), model.classifier(out[:, -1]))


@pytest.fixture
def tiny_pretrained(monkeypatch, tmp_path):
    """A pretrained_cnn whose 'training' is instant: the seeded, untrained CNN; records the recipes it was asked for."""
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    calls = []

    def fake_train(model, recipe, progress=True):
        calls.append(recipe["epochs"])
        return {"test_accuracy": 0.1}

    monkeypatch.setattr(models, "train_pretrained_cnn", fake_train)
    return calls


def test_pretrained_cnn_is_cached_verified_and_retrained_when_corrupt(tiny_pretrained, monkeypatch):
    import torch

    monkeypatch.setenv("COURSE_MODE", "full")
    first = models.pretrained_cnn()
    path = models.pretrained_path()
    record = json.loads(path.with_suffix(".json").read_text())
    assert path.exists() and len(record["sha256"]) == 64 and tiny_pretrained == [15]
    assert record["recipe"] == models.PRETRAINED_RECIPE and record["test_accuracy"] == 0.1
    second = models.pretrained_cnn()  # from the cache: no training
    assert tiny_pretrained == [15] and not second.training
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values(),
                                                 strict=True))
    path.write_bytes(path.read_bytes()[:1000])  # truncate: checksum mismatch -> retrain, never use
    models.pretrained_cnn(progress=False)
    assert tiny_pretrained == [15, 15]
    record = json.loads(path.with_suffix(".json").read_text())
    torch.save({"features.0.0.weight": torch.zeros(3)}, path)  # right checksum in the record, wrong shapes
    record["sha256"] = models._file_sha256(path)
    path.with_suffix(".json").write_text(json.dumps(record))
    models.pretrained_cnn(progress=False)
    assert tiny_pretrained == [15, 15, 15]
    assert not list(path.parent.glob("*.part"))  # atomic writes leave no temporary files


def test_quick_mode_trains_a_short_recipe_unless_the_full_model_is_cached(tiny_pretrained, monkeypatch):
    monkeypatch.setenv("COURSE_MODE", "quick")
    _, record = models.pretrained_cnn_with_info()
    assert tiny_pretrained == [2] and record["recipe"] == models.QUICK_RECIPE
    monkeypatch.setenv("COURSE_MODE", "full")
    models.pretrained_cnn()
    monkeypatch.setenv("COURSE_MODE", "quick")
    _, record = models.pretrained_cnn_with_info()  # the full model is cached now: quick mode uses it
    assert tiny_pretrained == [2, 15] and record["recipe"] == models.PRETRAINED_RECIPE


def test_cached_model_trains_once_and_retrains_a_corrupt_or_stale_cache(monkeypatch, tmp_path, capsys):
    import torch
    from torch import nn

    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    calls = []

    def train(model):
        calls.append(1)
        with torch.no_grad():
            model.weight.fill_(len(calls))
        return {"score": len(calls)}

    def build():
        return nn.Linear(3, 2)

    model, record = models.cached_model("toy", {"lr": 1}, build, train)
    assert record["score"] == 1 and len(calls) == 1 and not model.training
    again, record = models.cached_model("toy", {"lr": 1}, build, train)
    assert len(calls) == 1 and torch.equal(again.weight, model.weight) and record["score"] == 1
    (path,) = (tmp_path / "models").glob("toy-*.pt")
    path.write_bytes(path.read_bytes()[:-7])  # truncated: the checksum no longer matches
    _, record = models.cached_model("toy", {"lr": 1}, build, train)
    assert len(calls) == 2 and record["score"] == 2 and "training it again" in capsys.readouterr().out
    models.cached_model("toy", {"lr": 2}, build, train)  # another recipe is another file
    assert len(calls) == 3 and len(list((tmp_path / "models").glob("toy-*.pt"))) == 2
    assert not list((tmp_path / "models").glob("*.part"))


def test_keras_random_affine_layer_geometry_and_saving(tmp_path):
    import keras

    x = np.random.default_rng(0).normal(size=(4, 28, 28, 1)).astype(np.float32)
    keras.utils.set_random_seed(0)
    run = keras.ops.convert_to_numpy
    still = models.keras_random_affine(degrees=0, shift=0, scale=0)
    assert np.allclose(run(still(x, training=True)), x, atol=1e-5)
    layer = models.keras_random_affine()
    assert np.allclose(run(layer(x, training=False)), x) and not np.allclose(run(layer(x, training=True)), x)
    blank = np.full((2, 28, 28, 1), models.BACKGROUND, np.float32)
    assert np.allclose(run(layer(blank, training=True)), blank, atol=1e-5)  # no black border is invented
    model = models.keras_cnn(augment=True)
    model.save(tmp_path / "cnn.keras")
    reloaded = keras.models.load_model(tmp_path / "cnn.keras")
    assert type(reloaded.layers[0]).__name__ == "RandomAffine"
    assert np.allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
