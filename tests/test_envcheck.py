"""helpers.envcheck: parsing pins, comparing them with what is installed, the printed table, thread limits."""

from __future__ import annotations

from importlib.metadata import version

import pytest
import torch
from threadpoolctl import threadpool_info

from helpers import envcheck

LINES = [
    "# a comment", "", "-e .", "--index-url https://example.org/simple",
    f"numpy=={version('numpy')}  # the installed version",
    "numpy==0.0.1; sys_platform == 'nonexistent-os'",
    "pytest==0.0.1",
    "surely-not-an-installed-package==1.0",
]


def test_pip_lines_keeps_requirements_and_their_markers():
    reqs = envcheck.pip_lines(LINES)
    assert list(reqs) == ["numpy; None", 'numpy; sys_platform == "nonexistent-os"', "pytest; None",
                          "surely-not-an-installed-package; None"]
    assert str(reqs["pytest; None"].specifier) == "==0.0.1"


def test_version_rows_says_ok_different_missing_and_skips_other_platforms():
    rows = envcheck.version_rows(envcheck.pip_lines(LINES))
    assert [(name, status) for name, _, _, status in rows] == [
        ("numpy", "ok"), ("pytest", "DIFFERENT"), ("surely-not-an-installed-package", "missing")]
    assert rows[1][2] == version("pytest")


def test_the_course_pins_are_read_from_requirements_txt():
    pins = envcheck.read_pins()
    assert any(req.name == "torch" for req in pins.values()) and len(pins) >= 20


def test_check_environment_prints_a_table_and_reports_mismatches(capsys):
    assert envcheck.check_environment(envcheck.pip_lines(LINES[:5])) is True
    out = capsys.readouterr().out
    assert "CPU cores" in out and "torch threads" in out and "1 of 1 pinned packages match" in out
    assert envcheck.check_environment(envcheck.pip_lines(LINES)) is False
    out = capsys.readouterr().out
    assert "DIFFERENT" in out and "missing" in out and "1 of 3 pinned packages match; fix with" in out
    assert envcheck.check_environment(envcheck.pip_lines(LINES[:5]), hardware=False) is True
    out = capsys.readouterr().out
    assert out.startswith("package") and "CPU cores" not in out


def test_thread_pools_are_named_after_the_package_that_ships_them():
    pool = {"filepath": "/x/lib/python3.11/site-packages/numpy.libs/libscipy_openblas64_.so", "prefix": "libscipy"}
    assert envcheck._owner(pool) == "numpy"
    assert envcheck._owner({"filepath": "/usr/lib/libgomp.so.1", "prefix": "libgomp"}) == "libgomp"
    assert any("threads (numpy)" in what for what, _ in envcheck.hardware_rows())


def test_usable_cores_is_between_one_and_the_core_count():
    import os

    assert 1 <= envcheck.usable_cores() <= os.cpu_count()


def test_limit_threads_sets_and_restores_blas_and_torch_threads():
    before_torch = torch.get_num_threads()
    before_blas = [p["num_threads"] for p in threadpool_info()]
    with envcheck.limit_threads(1):
        assert torch.get_num_threads() == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info())
    assert torch.get_num_threads() == before_torch
    assert [p["num_threads"] for p in threadpool_info()] == before_blas


def test_describe_cpu_names_the_cpu_and_what_pytorch_uses():
    line = envcheck.describe_cpu()
    assert line.startswith("CPU: ") and f"PyTorch kernels {torch.backends.cpu.get_cpu_capability()}" in line
    assert envcheck.cpu_name() and all(name in line for name in ("VNNI", "bfloat16", "AMX"))


def test_instruction_caps_switch_features_off(monkeypatch):
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the VNNI, bfloat16 and AMX probes are for x86-64")
    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "FBGEMM_ENABLE_INSTRUCTIONS"):
        monkeypatch.delenv(name, raising=False)
    uncapped = envcheck.cpu_features()
    assert uncapped["int8 dot products (VNNI)"] == torch.cpu._is_vnni_supported()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.setenv("FBGEMM_ENABLE_INSTRUCTIONS", "AVX2")
    capped = envcheck.cpu_features()
    assert not capped["int8 dot products (VNNI)"] and not capped["bfloat16 instructions"] and not capped["AMX"]
    caps = envcheck.describe_cpu().split("(capped: ")[1]
    assert "ONEDNN_MAX_CPU_ISA=AVX2" in caps and "FBGEMM_ENABLE_INSTRUCTIONS=AVX2" in caps
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    assert envcheck._onednn_allows("AVX512_CORE_VNNI") and not envcheck._onednn_allows("AVX512_CORE_AMX")


def test_the_avx2_imitation_reaches_pytorch():
    """make test runs this file again with ATEN_CPU_CAPABILITY=avx2: PyTorch must then use its AVX2 kernels."""
    import os

    if os.environ.get("ATEN_CPU_CAPABILITY", "").lower() != "avx2":
        pytest.skip("runs in make test's second pass, under ATEN_CPU_CAPABILITY=avx2")
    assert envcheck.cpu_features()["torch kernels"] == "AVX2"
