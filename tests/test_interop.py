"""helpers.interop: a PyTorch network's weights copied into its Keras twin give the same predictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from helpers.interop import copy_weights_to_keras
from helpers.keras_models import keras_cnn
from helpers.torch_models import torch_cnn


def test_copy_weights_to_keras_gives_the_same_predictions():
    torch.manual_seed(0)
    source = torch_cnn(width=4).eval()
    for m in source.modules():  # non-trivial BatchNorm statistics, so that a mix-up would show
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    target = copy_weights_to_keras(source, keras_cnn(width=4))
    x = torch.randn(6, 1, 28, 28)
    expected = torch.softmax(source(x), 1).detach().numpy()
    got = target.predict(x.numpy().transpose(0, 2, 3, 1), verbose=0)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    with pytest.raises(ValueError):
        copy_weights_to_keras(torch_cnn(width=8), keras_cnn(width=4))
