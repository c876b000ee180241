"""The course's run mode, paths, seeding and device choice: the few settings every chapter shares."""

from __future__ import annotations

import contextlib
import os
import random
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    import torch

T = TypeVar("T")

MODE_VARIABLE = "COURSE_MODE"
MODES = ("full", "quick")
REPO_ROOT = Path(__file__).resolve().parent.parent


def mode() -> str:
    """The run mode from COURSE_MODE: 'full' (default, what a reader runs) or 'quick' (small and fast, for CI)."""
    value = os.environ.get(MODE_VARIABLE, "full").strip().lower() or "full"
    if value not in MODES:
        raise ValueError(f"{MODE_VARIABLE}={value!r} is not a run mode; use one of {', '.join(MODES)}")
    return value


def is_quick() -> bool:
    """True in quick mode."""
    return mode() == "quick"


def by_mode(full: T, quick: T) -> T:
    """Pick a value for the current run mode: by_mode(full=5, quick=1)."""
    return quick if is_quick() else full


def data_dir() -> Path:
    """The local data cache: $COURSE_DATA_DIR if set, else the repository's data/ folder."""
    path = Path(os.environ.get("COURSE_DATA_DIR") or REPO_ROOT / "data")
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[IO[bytes]]:
    """Write a file atomically: yield a temporary file next to `path`; rename it into place if the block succeeds.

    An interrupted or failing write never leaves a half-written file at `path` (and never a stray temporary file).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
        os.chmod(tmp, 0o644)  # mkstemp makes files private; the course's caches are ordinary data
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def seed_everything(seed: int = 0) -> list[str]:
    """Seed Python, NumPy and whichever of PyTorch and TensorFlow/Keras are imported; returns what was seeded.

    Import the frameworks a chapter uses first (the setup cell does), then seed.
    """
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    seeded = ["random", "numpy"]
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)  # also seeds every CUDA device
        seeded.append("torch")
    if "keras" in sys.modules or "tensorflow" in sys.modules:
        import keras

        keras.utils.set_random_seed(seed)  # Python, NumPy and the backend's own generator
        seeded.append("keras")
    return seeded


@contextlib.contextmanager
def _quiet_stderr_fd():
    """Send what C/C++ code writes to file descriptor 2 to the null device for a moment."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def quiet_tensorflow() -> None:
    """Import TensorFlow and Keras without TensorFlow's C++ start-up log lines; Python warnings still show."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if "tensorflow" in sys.modules:
        return
    with _quiet_stderr_fd():
        import keras  # noqa: F401 - imported for its side effect: later imports are silent
        import tensorflow  # noqa: F401


def device() -> torch.device:
    """The best PyTorch device here: CUDA, then Apple's MPS, then the CPU."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_mode(**settings: object) -> str:
    """One line naming the run mode and its settings, e.g. 'full mode: 60,000 training images · 5 epochs'."""
    parts = [f"{v:,} {k.replace('_', ' ')}" if isinstance(v, int) else f"{k.replace('_', ' ')} {v}"
             for k, v in settings.items()]
    return f"{mode()} mode: " + " · ".join(parts)
