"""helpers.keras_models: the Keras twins have the PyTorch models' parameter counts; RandomAffine's geometry and
saving."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from helpers import BACKGROUND, count_params
from helpers import keras_models as km


@pytest.mark.parametrize(("build", "params"), [
    (km.keras_mlp, 535_818), (km.keras_cnn, 101_050),
    (km.keras_lstm, 81_674),  # PyTorch's LSTM has two bias vectors per gate, Keras one: 512 fewer
    (km.keras_official_cnn, 34_826),
])
def test_keras_models_match_their_torch_twins(build, params):
    model = build()
    assert count_params(model) == params
    out = model.predict(np.zeros((3, 28, 28, 1), np.float32), verbose=0)
    assert out.shape == (3, 10) and np.allclose(out.sum(1), 1, atol=1e-5)  # softmax probabilities


def test_count_params_leaves_out_batchnorm_statistics_and_counts_frozen_layers():
    model = km.keras_cnn(width=4)
    total = count_params(model)
    assert total < sum(int(np.prod(w.shape)) for w in model.weights)  # moving mean and variance are left out
    model.layers[0].trainable = False
    assert count_params(model) == total and count_params(model, trainable_only=True) == total - 36


def test_random_affine_layer_geometry_and_saving(tmp_path):
    x = np.random.default_rng(0).normal(size=(4, 28, 28, 1)).astype(np.float32)
    keras.utils.set_random_seed(0)
    run = keras.ops.convert_to_numpy
    still = km.RandomAffine(degrees=0, shift=0, scale=0)
    assert np.allclose(run(still(x, training=True)), x, atol=1e-5)
    layer = km.RandomAffine()
    assert np.allclose(run(layer(x, training=False)), x) and not np.allclose(run(layer(x, training=True)), x)
    blank = np.full((2, 28, 28, 1), BACKGROUND, np.float32)
    assert np.allclose(run(layer(blank, training=True)), blank, atol=1e-5)  # no black border is invented
    model = km.keras_cnn(augment=True)
    model.save(tmp_path / "cnn.keras")
    reloaded = keras.models.load_model(tmp_path / "cnn.keras")
    assert isinstance(reloaded.layers[0], km.RandomAffine)
    assert np.allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_cached_keras_trains_once_restores_kept_files_and_retrains_when_damaged(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    checkpoint = tmp_path / "runs" / "best.keras"
    calls = []

    def build():
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])

    def fit(model):
        calls.append(1)
        model.set_weights([w + len(calls) for w in model.get_weights()])
        checkpoint.parent.mkdir(exist_ok=True)
        model.save(checkpoint)  # a file the training writes, as ModelCheckpoint does
        return {"history": {"loss": [0.5]}, "seconds": 1.0}

    x = np.ones((2, 4), np.float32)
    model, record = km.cached_keras("toy", {"a": 1}, build, fit, keep=[checkpoint])
    checkpoint.unlink()  # a fresh machine with the cache copied over: the checkpoint is put back
    again, record = km.cached_keras("toy", {"a": 1}, build, fit, keep=[checkpoint])
    assert len(calls) == 1 and record["history"] == {"loss": [0.5]} and checkpoint.exists()
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    (path,) = (tmp_path / "data" / "models").glob("toy-*[0-9a-f].keras")
    path.write_bytes(path.read_bytes()[:-10])  # damaged: trained again, never loaded
    km.cached_keras("toy", {"a": 1}, build, fit, keep=[checkpoint])
    assert len(calls) == 2 and "training it again" in capsys.readouterr().out
    km.cached_keras("toy", {"a": 2}, build, fit, keep=[checkpoint])  # another key: another model
    assert len(calls) == 3 and not list((tmp_path / "data" / "models").glob(".*part*"))
