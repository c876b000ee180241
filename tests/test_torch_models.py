"""helpers.torch_models: shapes and parameter counts, classes that can be imported, checked and pickled."""

from __future__ import annotations

import io

import pytest
import torch

from helpers import count_params
from helpers import torch_models as tm


@pytest.mark.parametrize(("build", "params"), [
    (tm.torch_mlp, 535_818), (tm.torch_cnn, 101_050), (tm.torch_lstm, 82_186), (tm.torch_official_cnn, 1_199_882),
])
def test_torch_models_map_images_to_ten_logits(build, params):
    model = build()
    assert count_params(model) == params
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


@pytest.mark.parametrize(("build", "cls"), [(tm.torch_cnn, tm.CourseCNN), (tm.torch_lstm, tm.RowLSTM)])
def test_model_classes_are_module_level_and_picklable(build, cls):
    model = build().eval()
    assert isinstance(model, cls) and type(build()) is cls  # one class, not a new one per call
    buffer = io.BytesIO()
    torch.save(model, buffer)  # pickles the class by its import path
    buffer.seek(0)
    again = torch.load(buffer, weights_only=False)
    x = torch.randn(2, 1, 28, 28)
    assert isinstance(again, cls) and torch.equal(again(x), model(x))


def test_row_lstm_reads_the_rows_as_a_sequence():
    torch.manual_seed(0)
    model = tm.torch_lstm(hidden=8).eval()
    x = torch.randn(2, 1, 28, 28)

    def change(row: int) -> float:
        moved = x.clone()
        moved[:, :, row] += 3.0
        return (model(moved) - model(x)).abs().max().item()

    # an untrained LSTM forgets geometrically: the last row matters far more than the first, the middle in between
    assert change(27) > change(14) > change(0)
    assert model(x.reshape(2, 28, 28)).shape == (2, 10)  # also takes (N, rows, pixels)


def test_course_cnn_blocks_keep_size_and_pool_twice():
    model = tm.torch_cnn(width=4)
    x = torch.randn(1, 1, 28, 28)
    assert model.features(x).shape == (1, 16, 7, 7)
    assert tm.conv_block(3, 5)(torch.randn(1, 3, 9, 9)).shape == (1, 5, 9, 9)


def test_course_cnn_without_batchnorm_keeps_conv_biases():
    """The ablation's CNN: no BatchNorm layers, every convolution with its bias, same output shape."""
    plain, with_bn = tm.CourseCNN(batchnorm=False), tm.CourseCNN()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    assert all(m.bias is not None for m in plain.modules() if isinstance(m, torch.nn.Conv2d))
    assert all(m.bias is None for m in with_bn.modules() if isinstance(m, torch.nn.Conv2d))
    assert plain(torch.randn(2, 1, 28, 28)).shape == (2, 10)
