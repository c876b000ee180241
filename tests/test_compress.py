"""Chapter 7's compression tools: pruning reaches the sparsity asked for, channel pruning shrinks the model without
changing what it computes from the kept channels, int8 models stay close to fp32, the timer returns sane medians."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch import nn

from helpers import compress, count_params, export, metrics


def small_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(16 * 7 * 7, 32), nn.ReLU(), nn.Linear(32, 10))


def fixed_images(n: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 1, 28, 28, generator=g)


@pytest.mark.parametrize("amount", [0.5, 0.8, 0.9])
def test_global_pruning_reaches_the_requested_sparsity_and_keeps_it(amount):
    model = small_cnn()
    total = count_params(model)
    compress.prune_global(model, amount)
    assert compress.sparsity(model) == pytest.approx(amount, abs=1e-3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = model(fixed_images(8)).square().mean()
    loss.backward()
    optimizer.step()  # fine-tuning with the masks in place: pruned weights stay zero
    assert compress.sparsity(model) == pytest.approx(amount, abs=1e-3)
    compress.finalize_pruning(model)
    assert compress.sparsity(model) == pytest.approx(amount, abs=1e-3)
    assert count_params(model) == total and compress.count_nonzero(model) < total * (1 - amount) + 100
    assert not any(name.endswith("_orig") for name, _ in model.named_parameters())


def test_pruning_step_by_step_reaches_each_total_sparsity():
    model = small_cnn()
    for amount in (0.5, 0.8, 0.9):
        compress.finalize_pruning(compress.prune_global(model, amount))
        assert compress.sparsity(model) == pytest.approx(amount, abs=1e-3)


def test_channel_pruning_makes_the_model_smaller_and_keeps_the_output_shape():
    model, x = small_cnn().eval(), fixed_images(4)
    before = count_params(model)
    compress.prune_channels(model, 0.5, x[:1])
    assert model[0].out_channels == 4 and model[1].num_features == 4 and model[4].in_channels == 4
    assert model[4].out_channels == 8 and model[8].in_features == 8 * 49 and model[8].out_features == 16
    assert model[10].out_features == 10 and model(x).shape == (4, 10)
    assert count_params(model) < 0.35 * before


def test_channel_pruning_removes_dead_channels_without_changing_the_outputs():
    model, x = small_cnn().eval(), fixed_images(4)
    with torch.no_grad():  # half the channels of every hidden layer are dead: they output ReLU(0) = 0
        for layer in (model[0], model[4], model[8]):
            layer.weight[::2] = 0
            if layer.bias is not None:
                layer.bias[::2] = 0
    reference = model(x)
    compress.prune_channels(model, 0.5, x[:1])
    torch.testing.assert_close(model(x), reference, atol=1e-5, rtol=1e-5)


def test_channel_pruning_works_through_nested_blocks_of_the_course_cnn():
    from helpers.torch_models import torch_cnn

    torch.manual_seed(0)
    model, x = torch_cnn(width=8).eval(), fixed_images(4)
    assert compress.is_chain(model, x[:1])
    compress.prune_channels(model, 0.5, x[:1])
    assert [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)] == [4, 8, 8, 16, 16]
    assert model.classifier[-1].in_features == 16 * 49 and model(x).shape == (4, 10)


def test_channel_pruning_refuses_a_model_that_is_not_a_chain():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)

        def forward(self, x):
            return self.b(self.a(x) + x)

    with pytest.raises(ValueError, match="chain"):
        compress.prune_channels(Residual(), 0.5, torch.randn(1, 4))


@pytest.mark.cpu  # int8 kernels chosen by the CPU's instruction set
def test_int8_models_stay_close_to_fp32_on_a_fixed_set():
    model, x = small_cnn().eval(), fixed_images(64)
    reference = model(x).detach()
    spread = reference.std().item()
    dynamic = compress.quantize_dynamic_int8(model)
    static = compress.quantize_static_int8(model, x.split(16))
    for quantized in (dynamic, static):
        out = quantized(x)
        assert (out - reference).abs().max().item() < 0.1 * spread
        assert (out.argmax(1) == reference.argmax(1)).float().mean().item() >= 0.95
    assert len(compress.torch_bytes(static)) < 0.5 * len(compress.torch_bytes(model))
    assert torch.equal(model(x), reference)  # the original model is left as it was


def test_distillation_loss_is_zero_only_when_the_student_matches_the_teacher():
    logits = torch.randn(8, 10)
    labels = logits.argmax(1)
    assert compress.distillation_loss(logits, logits, labels, alpha=1.0).item() == pytest.approx(0, abs=1e-6)
    assert compress.distillation_loss(torch.zeros(8, 10), logits, labels, alpha=1.0).item() > 0.01
    ce = nn.functional.cross_entropy(logits, labels).item()
    assert compress.distillation_loss(logits, logits, labels, alpha=0.0).item() == pytest.approx(ce)


def test_median_time_returns_sane_medians():
    assert 0.004 < compress.median_time(time.sleep, 0.005, repeats=5, warmup=1) < 0.05
    assert compress.median_time(lambda: None, repeats=20) < 0.001
    calls = []

    def sometimes_slow():
        calls.append(1)
        time.sleep(0.05 if len(calls) == 3 else 0.0)

    assert compress.median_time(sometimes_slow, repeats=9, warmup=0) < 0.01  # one slow call does not move it
    result = compress.benchmark(compress.torch_predictor(small_cnn()), fixed_images(32).numpy(), repeats=3, batch=32)
    assert result["latency_ms"] > 0 and result["throughput"] > 0


def test_sizes_and_predictors():
    model = small_cnn()
    data = compress.torch_bytes(model)
    assert len(data) > 4 * count_params(model)  # fp32: four bytes a parameter plus the format
    compress.prune_global(model, 0.9)
    compress.finalize_pruning(model)
    assert compress.gzip_size(compress.torch_bytes(model)) < 0.5 * len(compress.torch_bytes(model))
    labels = compress.torch_predictor(model)(fixed_images(10).numpy()).argmax(1)
    outputs = compress.predict_batches(compress.torch_predictor(model), fixed_images(10).numpy(), batch=3)
    assert outputs.shape == (10, 10) and metrics.accuracy(labels, outputs.argmax(1)) == 1.0
    assert isinstance(labels, np.ndarray)


@pytest.mark.cpu  # int8 kernels chosen by the CPU's instruction set
def test_onnx_export_and_int8_agree_with_pytorch(tmp_path):
    import onnx
    from onnx import numpy_helper

    model, x = small_cnn().eval(), fixed_images(32)
    path = export.export_onnx(model, tmp_path / "m.onnx", x[:1])
    expected = model(x).detach().numpy()
    np.testing.assert_allclose(export.onnx_predictor(path)(x.numpy()), expected, atol=1e-4)
    int8 = export.onnx_quantize_static(path, tmp_path / "q.onnx", [x[:16].numpy()])
    assert int8.stat().st_size < 0.5 * path.stat().st_size
    weights = [numpy_helper.to_array(i) for i in onnx.load(str(int8)).graph.initializer if i.data_type == 3]  # int8
    assert weights and max(np.abs(w.astype(int)).max() for w in weights) <= 64  # 2 · 255 · 64 fits in int16
    step = export.onnx_output_step(int8)
    kernels = export.onnx_predictor(int8)(x.numpy())  # fused int8 kernels: VNNI, AVX2, NEON... by this CPU
    simulated = export.onnx_predictor(int8, optimize=False)(x.numpy())  # the same arithmetic in float32
    # int32 accumulation is exact on every CPU (7-bit weights: no 16-bit saturation without VNNI), so kernels and
    # simulation can differ only where a requantisation rounds the other way: a step here and there, not more.
    assert np.abs(kernels - simulated).max() <= 2 * step
    # The quantisation error itself is CPU-independent: a few output steps on these logits (4.8 measured).
    assert np.abs(simulated - expected).max() <= 10 * step
    assert (kernels.argmax(1) == expected.argmax(1)).mean() >= 0.9


@pytest.mark.cpu  # int8 kernels chosen by the CPU's instruction set
def test_tflite_int8_runs_quietly_and_stays_close(capfd):
    from helpers.keras_models import keras_cnn

    keras_model = keras_cnn(width=4)
    x = fixed_images(32).numpy().transpose(0, 2, 3, 1)
    fp32, int8 = export.tflite_convert(keras_model), export.tflite_convert(keras_model, [x[:16]])
    expected = keras_model.predict(x, verbose=0)
    np.testing.assert_allclose(export.tflite_predictor(fp32)(x), expected, atol=1e-5)
    assert np.abs(export.tflite_predictor(int8)(x) - expected).max() < 0.05 and len(int8) < 0.5 * len(fp32)
    out = capfd.readouterr()
    assert "/tmp" not in out.out + out.err and "Assets written" not in out.out + out.err


def test_recalibrate_batchnorm_matches_the_statistics_of_the_data():
    model = small_cnn()
    x = fixed_images(64) * 3 + 1
    compress.recalibrate_batchnorm(model, x.split(16))
    features = model[0](x).detach()
    torch.testing.assert_close(model[1].running_mean, features.mean((0, 2, 3)), atol=1e-4, rtol=1e-4)
    assert not model.training and model[1].momentum == 0.1
