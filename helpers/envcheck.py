"""Check the environment from inside a notebook: installed versions against the pins, processors, threads.

`check_environment()` prints one table and says whether every pin of requirements.txt is met; Chapter 3 explains
it. `limit_threads(n)` caps the threads of NumPy's BLAS and of PyTorch for a block of code. Frameworks are
imported only inside the functions that report on them.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from collections.abc import Iterable, Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement

from .core import repo_root


def pip_lines(lines: Iterable[str]) -> dict[str, Requirement]:
    """Requirement lines of a requirements file (not comments, options or `-e .`), keyed 'name; marker'."""
    reqs = {}
    for line in lines:
        line = line.split(" #")[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        req = Requirement(line)
        reqs[f"{req.name.lower()}; {req.marker}"] = req
    return reqs


def read_pins(path: Path | str | None = None) -> dict[str, Requirement]:
    """The pinned requirements of a requirements.txt (the course's own by default)."""
    path = Path(path) if path else repo_root() / "requirements.txt"
    return pip_lines(path.read_text(encoding="utf-8").splitlines())


def version_rows(pins: dict[str, Requirement] | None = None) -> list[tuple[str, str, str, str]]:
    """(package, pinned, installed, status) for every pin that applies to this platform; status ok/DIFFERENT/missing."""
    rows = []
    for req in (read_pins() if pins is None else pins).values():
        if req.marker and not req.marker.evaluate():
            continue  # e.g. tensorflow-cpu on a Mac
        pinned = str(req.specifier)
        try:
            installed = version(req.name)
        except PackageNotFoundError:
            rows.append((req.name, pinned, "-", "missing"))
            continue
        ok = req.specifier.contains(installed.split("+")[0], prereleases=True)  # 2.13.0+cpu counts as 2.13.0
        rows.append((req.name, pinned, installed, "ok" if ok else "DIFFERENT"))
    return rows


def hardware_rows() -> list[tuple[str, str]]:
    """(what, value) for Python, the operating system, CPU cores, thread pools and accelerators."""
    rows = [("python", f"{platform.python_version()} ({sys.implementation.name})"),
            ("system", f"{platform.system()} {platform.release()} {platform.machine()}"),
            ("CPU cores (usable / total)", f"{usable_cores()} / {os.cpu_count()}")]
    from threadpoolctl import threadpool_info

    torch = _import_torch()  # first, so that its thread pool is listed too
    for pool in threadpool_info():
        rows.append((f"{pool['internal_api']} threads ({_owner(pool)})", str(pool["num_threads"])))
    if torch:
        rows.append(("torch threads (intra-op)", str(torch.get_num_threads())))
        cuda = torch.cuda.is_available()
        rows.append(("CUDA GPU", torch.cuda.get_device_name(0) if cuda else "none"))
        mps = getattr(torch.backends, "mps", None)
        rows.append(("Apple MPS", "available" if mps and mps.is_available() else "none"))
    if "tensorflow" in sys.modules:  # importing TensorFlow only to report on it would take seconds
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        rows.append(("TensorFlow GPUs", ", ".join(g.name for g in gpus) or "none"))
    return rows


def _owner(pool: dict) -> str:
    """The package that ships a thread pool's library: numpy for …/site-packages/numpy.libs/libopenblas.so."""
    parts = Path(pool.get("filepath", "")).parts
    if "site-packages" in parts and parts.index("site-packages") + 1 < len(parts):
        return parts[parts.index("site-packages") + 1].removesuffix(".libs")
    return pool.get("prefix", "?")


def usable_cores() -> int:
    """CPU cores this process may run on (the affinity mask where the system has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _import_torch():
    """PyTorch if it is installed, else None."""
    if not _installed("torch"):
        return None
    import torch

    return torch


def _installed(name: str) -> bool:
    try:
        version(name)
    except PackageNotFoundError:
        return False
    return True


# oneDNN's instruction-set levels, lowest first (ONEDNN_MAX_CPU_ISA caps it; its docs list these names)
_ONEDNN_LEVELS = ["SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI",
                  "AVX512_CORE_BF16", "AVX10_1_512", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16"]


def cpu_name() -> str:
    """The processor's model name (Linux: /proc/cpuinfo; macOS: sysctl), else what platform.processor() says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        import subprocess

        with contextlib.suppress(OSError, subprocess.SubprocessError):
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                  timeout=5).stdout.strip()
    return platform.processor() or platform.machine()


def _onednn_allows(level: str) -> bool:
    """False when ONEDNN_MAX_CPU_ISA caps oneDNN (PyTorch's and TensorFlow's CPU kernels) below `level`."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", os.environ.get("DNNL_MAX_CPU_ISA", "ALL")).upper()
    if cap not in _ONEDNN_LEVELS:
        return True  # ALL, DEFAULT or a name this list does not know
    return _ONEDNN_LEVELS.index(cap) >= _ONEDNN_LEVELS.index(level)


def cpu_features() -> dict[str, object]:
    """What PyTorch's CPU kernels can use here: its vector level, and whether int8 dot products (VNNI), bfloat16
    arithmetic and AMX tiles run in hardware (after the ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA and
    FBGEMM_ENABLE_INSTRUCTIONS caps that the course's tests use to imitate older CPUs); None: unknown."""
    import torch

    features: dict[str, object] = {"machine": platform.machine(),
                                   "torch kernels": torch.backends.cpu.get_cpu_capability()}
    probe = {name: getattr(torch.cpu, f"_is_{name}_supported", None) for name in ("vnni", "avx512_bf16", "amx_tile")}
    known = {name: fn() if fn else None for name, fn in probe.items()}
    fbgemm = os.environ.get("FBGEMM_ENABLE_INSTRUCTIONS", "").upper()
    vnni = known["vnni"] and _onednn_allows("AVX512_CORE_VNNI") and fbgemm in ("", "AVX512_E1", "AVX512_VNNI")
    bf16 = (known["avx512_bf16"] or known["amx_tile"]) and _onednn_allows("AVX512_CORE_BF16")
    amx = known["amx_tile"] and _onednn_allows("AVX512_CORE_AMX")
    if platform.machine().lower() in ("arm64", "aarch64"):  # these probes are x86 only
        vnni = bf16 = amx = None
    features.update({"int8 dot products (VNNI)": vnni, "bfloat16 instructions": bf16, "AMX": amx})
    return features


def describe_cpu() -> str:
    """One line naming the CPU and what its kernels use, printed beside every speed figure the course shows."""
    words = {True: "yes", False: "no", None: "unknown"}
    f = cpu_features()
    parts = [f"{cpu_name()} ({f.pop('machine')})", f"PyTorch kernels {f.pop('torch kernels')}"]
    parts += [f"{name}: {words[bool(v) if v is not None else None]}" for name, v in f.items()]
    caps = [f"{k}={os.environ[k]}" for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "FBGEMM_ENABLE_INSTRUCTIONS")
            if os.environ.get(k)]
    return "CPU: " + " · ".join(parts) + (f" (capped: {', '.join(caps)})" if caps else "")


def check_environment(pins: dict[str, Requirement] | None = None, hardware: bool = True) -> bool:
    """Print the hardware (unless hardware=False) and a version-against-pin table; True when every pin is met."""
    machine, versions = hardware_rows() if hardware else [], version_rows(pins)
    width = max(len(r[0]) for r in machine + versions + [("package",)]) + 2
    for what, value in machine:
        print(f"{what:<{width}}{value}")
    print(f"{chr(10) if machine else ''}{'package':<{width}}{'pinned':<12}{'installed':<14}status")
    for name, pinned, installed, status in versions:
        print(f"{name:<{width}}{pinned:<12}{installed:<14}{status}")
    bad = [r for r in versions if r[3] != "ok"]
    print(f"\n{len(versions) - len(bad)} of {len(versions)} pinned packages match"
          + ("" if not bad else "; fix with `make setup` (or pip install -r requirements.txt)"))
    return not bad


@contextlib.contextmanager
def limit_threads(n: int = 1) -> Iterator[None]:
    """Run a block with at most n threads in NumPy's BLAS and in PyTorch (if imported); restore them after.

    Small matrices (a 128-unit layer, an RNN step) gain little from several threads, and on a busy machine
    threads that wait for each other can make a loop many times slower.
    """
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch else None
    with threadpool_limits(limits=n):
        if torch:
            torch.set_num_threads(n)
        try:
            yield
        finally:
            if torch:
                torch.set_num_threads(before)
