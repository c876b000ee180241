"""Speed on two CPU paths: this CPU's own instruction set, and the AVX2-only path most laptops take.

    python scripts/bench_cpu.py           # both paths on this machine (x86-64), about a minute
    python scripts/bench_cpu.py --quick   # a few repeats only: a smoke run, not for quoting

int8 and bfloat16 are fast only with the right instructions: VNNI (8-bit dot products) for int8, AVX-512 BF16 or
AMX for bfloat16. PyTorch, oneDNN and FBGEMM can be told to ignore instructions a CPU has
(ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2, FBGEMM_ENABLE_INSTRUCTIONS=AVX2), so one machine can measure
both paths: each runs in a fresh process. ONNX Runtime reads the CPU's flags itself and ignores these settings, so
its rows come from this CPU's own path only. Everything runs on one thread, on untrained networks (speed does not
depend on the weights' values).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2"}
ROWS = [  # (key, label)
    ("mlp_fp32", "MLP fp32 inference (PyTorch), images/s"),
    ("mlp_int8", "MLP dynamic int8 inference (PyTorch), images/s"),
    ("cnn_fp32", "CNN fp32 inference (PyTorch), images/s"),
    ("cnn_int8", "CNN static int8 inference (PyTorch), images/s"),
    ("ort_fp32", "CNN fp32 inference (ONNX Runtime), images/s"),
    ("ort_int8", "CNN int8 inference (ONNX Runtime), images/s"),
    ("train_fp32", "CNN training float32, images/s"),
    ("train_bf16", "CNN training bfloat16 autocast, images/s"),
]
RATIOS = [("mlp_int8", "mlp_fp32", "MLP int8 speed-up"), ("cnn_int8", "cnn_fp32", "CNN int8 speed-up (PyTorch)"),
          ("ort_int8", "ort_fp32", "CNN int8 speed-up (ONNX Runtime)"),
          ("train_bf16", "train_fp32", "bfloat16 training speed-up")]


def images_per_second(fn, batch: int, repeats: int) -> float:
    """Images per second of fn() on a batch: the median of `repeats` timed calls after two warm-up calls."""
    fn(), fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return batch / sorted(times)[len(times) // 2]


def measure(repeats: int, train_steps: int, onnx: bool) -> dict:
    """Every row of the table on this process's CPU path (one thread)."""
    import torch
    import torch.nn.functional as F

    from helpers import compress, envcheck, export
    from helpers.torch_models import torch_cnn, torch_mlp

    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.randn(256, 1, 28, 28)
    out = {"cpu": envcheck.describe_cpu()}
    mlp, cnn = torch_mlp().eval(), torch_cnn().eval()
    with torch.inference_mode():
        for key, model in [("mlp_fp32", mlp), ("mlp_int8", compress.quantize_dynamic_int8(mlp)), ("cnn_fp32", cnn),
                           ("cnn_int8", compress.quantize_static_int8(cnn, x.split(64)))]:
            out[key] = images_per_second(lambda m=model: m(x), len(x), repeats)
    if onnx:
        with tempfile.TemporaryDirectory() as tmp:
            fp32 = export.export_onnx(cnn, Path(tmp) / "cnn.onnx", x[:1])
            int8 = export.onnx_quantize_static(fp32, Path(tmp) / "cnn_int8.onnx", [x[:64].numpy()])
            for key, path in [("ort_fp32", fp32), ("ort_int8", int8)]:
                predict = export.onnx_predictor(path)
                out[key] = images_per_second(lambda p=predict: p(x.numpy()), len(x), repeats)
    y = torch.randint(0, 10, (128,))
    for key, dtype in [("train_fp32", None), ("train_bf16", torch.bfloat16)]:
        model = torch_cnn().train()
        optimizer = torch.optim.AdamW(model.parameters(), 1e-3)

        def step(model=model, optimizer=optimizer, dtype=dtype):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
                loss = F.cross_entropy(model(x[:128]).float(), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        out[key] = images_per_second(step, 128, train_steps)
    return out


def run_path(env: dict, repeats: int, train_steps: int, onnx: bool) -> dict:
    """Run `measure` in a fresh Python process with these environment variables set."""
    cmd = [sys.executable, __file__, "--worker", "--repeats", str(repeats), "--train-steps", str(train_steps)]
    result = subprocess.run(cmd + ([] if onnx else ["--no-onnx"]), env={**os.environ, **env}, capture_output=True,
                            text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    """Measure each path in its own process and print one table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few repeats: a smoke run")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-onnx", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=30, help=argparse.SUPPRESS)
    parser.add_argument("--train-steps", type=int, default=10, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.repeats, args.train_steps, not args.no_onnx)))
        return 0
    repeats, steps = (3, 2) if args.quick else (args.repeats, args.train_steps)
    paths = {"this CPU": run_path({}, repeats, steps, onnx=True)}
    if platform.machine().lower() in ("x86_64", "amd64"):
        paths["AVX2 path"] = run_path(AVX2, repeats, steps, onnx=False)
    for name, result in paths.items():
        print(f"{name}: {result['cpu']}")
    print(f"\n{'one thread, batch 256 (training: 128)':<50}" + "".join(f"{name:>14}" for name in paths))
    for key, label in ROWS:
        print(f"{label:<50}" + "".join(f"{r[key]:>14,.0f}" if key in r else f"{'-':>14}"
                                       for r in paths.values()))
    for new, old, label in RATIOS:
        print(f"{label:<50}" + "".join(f"{r[new] / r[old]:>13.2f}x" if new in r else f"{'-':>14}"
                                       for r in paths.values()))
    if len(paths) > 1:
        print("\n-: ONNX Runtime picks its kernels from the CPU's own flags; the AVX2 settings do not reach it "
              "(tests/test_cpu_paths.py runs its int8 test on an emulated AVX2 CPU instead)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
