"""helpers.export: ONNX export equals PyTorch and leaves the caller's model alone."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch

from helpers import export
from helpers.torch_models import torch_cnn


def test_onnx_export_equals_pytorch(tmp_path):
    torch.manual_seed(0)
    model = torch_cnn(width=4).eval()
    path = export.export_onnx(model, tmp_path / "cnn.onnx")
    x = torch.randn(5, 1, 28, 28)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"images": x.numpy()})
    with torch.no_grad():
        expected = model(x).numpy()
    assert out.shape == (5, 10) and np.abs(out - expected).max() < 1e-5


def test_onnx_export_leaves_the_callers_model_in_its_mode(tmp_path):
    model = torch_cnn(width=4).train()
    export.export_onnx(model, tmp_path / "cnn.onnx")
    assert model.training and next(model.parameters()).device.type == "cpu"
