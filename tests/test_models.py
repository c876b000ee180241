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
    """A pretrained_cnn whose 'training' is instant: a seeded, untrained CNN."""
    import torch

    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    calls = []

    def fake_train(progress=True):
        calls.append(1)
        torch.manual_seed(0)
        return models.torch_cnn().eval(), {"recipe": models.PRETRAINED_RECIPE, "test_accuracy": 0.1}

    monkeypatch.setattr(models, "train_pretrained_cnn", fake_train)
    return calls


def test_pretrained_cnn_is_cached_verified_and_retrained_when_corrupt(tiny_pretrained):
    import torch

    first = models.pretrained_cnn()
    path = models.pretrained_path()
    record = json.loads(path.with_suffix(".json").read_text())
    assert path.exists() and len(record["sha256"]) == 64 and tiny_pretrained == [1]
    second = models.pretrained_cnn()  # from the cache: no training
    assert tiny_pretrained == [1] and not second.training
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values(),
                                                 strict=True))
    path.write_bytes(path.read_bytes()[:1000])  # truncate: checksum mismatch -> retrain, never use
    models.pretrained_cnn(progress=False)
    assert tiny_pretrained == [1, 1]
    record = json.loads(path.with_suffix(".json").read_text())
    record["sha256"] = models._sha256(path)
    torch.save({"features.0.0.weight": torch.zeros(3)}, path)  # right checksum in the record, wrong shapes
    record["sha256"] = models._sha256(path)
    path.with_suffix(".json").write_text(json.dumps(record))
    models.pretrained_cnn(progress=False)
    assert tiny_pretrained == [1, 1, 1]
    assert not list(path.parent.glob("*.part"))  # atomic writes leave no temporary files


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
