"""Running a trained network outside its framework (Chapters 7-8): ONNX export, ONNX Runtime sessions and int8
quantization, and TensorFlow Lite conversion (float32 or full int8) with its interpreter.

ONNX Runtime's quantizer is the int8 route that is not deprecated and runs wherever ONNX Runtime does; TFLite's
converter takes a representative data set; `tf.lite.Interpreter` runs the result (LiteRT is its new name).
"""

from __future__ import annotations

import copy
import logging
import tempfile
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from torch import nn

from .core import _quiet_stderr_fd, quiet_tensorflow

# ---------------------------------------------------------------- ONNX and ONNX Runtime


def export_onnx(model: nn.Module, path: str | Path, example: torch.Tensor | None = None) -> Path:
    """Export a copy of the model (on the CPU, eval mode; yours is left as it is) to ONNX with the dynamo exporter:
    input 'images' with a dynamic batch size, output 'logits'. example: one input batch (default 2 MNIST images)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(model).cpu().eval()
    example = torch.zeros(2, 1, 28, 28) if example is None else example.cpu()
    quiet = [logging.getLogger(name) for name in ("torch.onnx", "torch.onnx._internal.exporter._registration")]
    levels = [log.level for log in quiet]
    try:
        for log in quiet:
            log.setLevel(logging.ERROR)  # "torchvision is not installed" notices: irrelevant here
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)  # torch-internal pytree notice
            program = torch.onnx.export(model, (example,), input_names=["images"], output_names=["logits"],
                                        dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True,
                                        verbose=False)
        program.save(str(path))
    finally:
        for log, level in zip(quiet, levels, strict=True):
            log.setLevel(level)
    return path


def onnx_predictor(path: str | Path, threads: int = 1, optimize: bool = True) -> Callable[[np.ndarray], np.ndarray]:
    """An ONNX Runtime CPU session wrapped as a function array -> array (threads: intra-op threads).

    optimize=False runs the graph node by node, as written: a quantized (QDQ) model then computes its int8
    arithmetic in float32 (dequantize, float operator, quantize), the same on every CPU, instead of the fused
    int8 kernels that ONNX Runtime picks for this CPU's instruction set.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def predict(x: np.ndarray) -> np.ndarray:
        return session.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]

    return predict


def onnx_output_step(path: str | Path) -> float:
    """The scale of a quantized (QDQ) ONNX model's output: one step of the int8 grid its outputs are rounded to."""
    graph = onnx.load(str(path)).graph
    last = next(n for n in graph.node if graph.output[0].name in n.output)
    if last.op_type != "DequantizeLinear":
        raise ValueError(f"{Path(path).name}: the output comes from {last.op_type}, not from DequantizeLinear")
    return float(next(numpy_helper.to_array(i) for i in graph.initializer if i.name == last.input[1]))


def onnx_quantize_static(src: str | Path, dst: str | Path, calibration: Iterable[np.ndarray]) -> Path:
    """int8 post-training quantization of an ONNX model with ONNX Runtime (QDQ format, per-channel 7-bit weights).

    Weights use 7 bits (reduce_range): on x86 CPUs without VNNI (AVX2, AVX-512 without VNNI) ONNX Runtime's
    uint8 x int8 kernel adds pairs of products in 16-bit registers, which overflow for 8-bit weights
    (2 · 255 · 127 > 32,767) and saturate; with 7-bit weights (at most ±64: 2 · 255 · 64 = 32,640) they cannot,
    so the file gives the same answers on every CPU. PyTorch's x86 backend does the same for its activations.
    """
    name = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).get_inputs()[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{name: np.asarray(x, dtype=np.float32)} for x in calibration])

        def get_next(self):
            return next(self.batches, None)

    dst = Path(dst)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(src), str(prepared))  # shape inference and graph clean-up first, as ORT advises
        quantize_static(str(prepared), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return dst


# ---------------------------------------------------------------- TensorFlow Lite


def tflite_convert(model: Any, calibration: Iterable[np.ndarray] | None = None) -> bytes:
    """Convert a Keras model to a TFLite flatbuffer: float32, or full int8 when calibration images are given.

    Full int8 means weights *and* activations, int8 input and output (TFLITE_BUILTINS_INT8), calibrated on
    the representative images, one at a time.
    """
    quiet_tensorflow()
    import tensorflow as tf  # here, not at the top: TensorFlow takes seconds to load

    tf_log = logging.getLogger("tensorflow")
    level = tf_log.level
    tf_log.setLevel(logging.ERROR)  # "INFO:tensorflow:Assets written to: <temporary folder>"
    try:
        with tempfile.TemporaryDirectory() as tmp, _quiet_stderr_fd():
            model.export(tmp, format="tf_saved_model", verbose=False)
            return _convert(tf, tf.lite.TFLiteConverter.from_saved_model(tmp), calibration)
    finally:
        tf_log.setLevel(level)


def _convert(tf: Any, converter: Any, calibration: Iterable[np.ndarray] | None) -> bytes:
    """Run a TFLite converter, set up for full int8 when calibration images are given."""
    if calibration is not None:
        images = [np.asarray(x, dtype=np.float32) for x in calibration]

        def representative():
            for x in images:
                for i in range(len(x)):
                    yield [x[i:i + 1]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def tflite_predictor(model: bytes, threads: int = 1) -> Callable[[np.ndarray], np.ndarray]:
    """A TFLite interpreter wrapped as array -> array; int8 models get their inputs quantized for them."""
    quiet_tensorflow()
    import tensorflow as tf  # here, not at the top: TensorFlow takes seconds to load

    with warnings.catch_warnings(), _quiet_stderr_fd():
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        interpreter = tf.lite.Interpreter(model_content=model, num_threads=threads)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    state = {"batch": None}

    def predict(x: np.ndarray) -> np.ndarray:
        if state["batch"] != len(x):
            interpreter.resize_tensor_input(inp["index"], [len(x), *x.shape[1:]])
            with _quiet_stderr_fd():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
                interpreter.allocate_tensors()
            state["batch"] = len(x)
        if inp["dtype"] == np.int8:
            scale, zero = inp["quantization"]
            x = np.clip(np.round(x / scale + zero), -128, 127)
        interpreter.set_tensor(inp["index"], np.ascontiguousarray(x, dtype=inp["dtype"]))
        interpreter.invoke()
        y = interpreter.get_tensor(out["index"])
        if out["dtype"] == np.int8:
            scale, zero = out["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        return y

    return predict
