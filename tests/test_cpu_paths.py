"""The CPU paths: int8 results that hold on an AVX2-only CPU, and the benchmark that measures both paths.

PyTorch, oneDNN and FBGEMM can be told to use AVX2 only (make test runs the whole suite a second time that way).
ONNX Runtime and TFLite pick their int8 kernels from the CPU's own flags and no setting reaches them, so their
tests (marked `cpu`) also run under QEMU's Haswell model: an emulated x86-64 CPU with AVX2 but no AVX-512, VNNI
or bfloat16 instructions. Where qemu-x86_64 is missing the test says so and is skipped.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
QEMU = shutil.which("qemu-x86_64")
# Haswell (2013): AVX2 and FMA, no AVX-512, no VNNI. The minus signs drop flags QEMU cannot emulate (it warns).
HASWELL = "Haswell,-pcid,-x2apic,-tsc-deadline,-hle,-invpcid,-rtm"


def beyond_avx2() -> bool | None:
    """Whether this CPU has int8 or bfloat16 instructions beyond AVX2 (AVX-512, AVX-VNNI, AMX); None: cannot tell."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    return re.search(r"\b(avx512\w*|avx_vnni\w*|amx_\w+)\b", flags) is not None


def emulated(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run this environment's Python on the emulated Haswell CPU."""
    return subprocess.run([QEMU, "-cpu", HASWELL, sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COURSE_EMULATED_CPU": "haswell"})


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="QEMU's Haswell model is x86-64")
def test_int8_runtimes_agree_with_the_maths_on_an_avx2_only_cpu():
    if beyond_avx2() is False:
        pytest.skip("this CPU has nothing beyond AVX2: the int8 runtime tests already ran on the AVX2 path, natively")
    if QEMU is None:
        pytest.skip("qemu-x86_64 not found: the int8 runtime tests ran on this CPU's own instruction set only "
                    "(Debian/Ubuntu: apt-get install qemu-user)")
    if os.environ.get("COURSE_EMULATED_CPU") or os.environ.get("ATEN_CPU_CAPABILITY"):
        pytest.skip("runs once, in make test's first pass, on the emulated CPU")
    probe = emulated("-c", "import torch; print(torch.backends.cpu.get_cpu_capability(), "
                           "torch.cpu._is_vnni_supported(), torch.cpu._is_avx512_bf16_supported())", timeout=300)
    assert probe.stdout.split() == ["AVX2", "False", "False"], probe.stderr[-2000:]
    run = emulated("-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "cpu", "tests/test_compress.py")
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    assert " passed" in run.stdout and "failed" not in run.stdout


def test_bench_cpu_measures_every_row():
    spec = importlib.util.spec_from_file_location("bench_cpu", ROOT / "scripts" / "bench_cpu.py")
    bench_cpu = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_cpu)
    result = bench_cpu.measure(repeats=1, train_steps=1, onnx=True)
    assert result["cpu"].startswith("CPU: ")
    assert all(result[key] > 0 for key, _ in bench_cpu.ROWS)
