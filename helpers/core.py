"""The course's run mode, paths, seeding and device choice: the few settings every chapter shares."""

from __future__ import annotations

import importlib.util
import os
import random
from pathlib import Path
from typing import TypeVar

import numpy as np

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


def seed_everything(seed: int = 0, frameworks: tuple[str, ...] = ("torch", "tensorflow")) -> int:
    """Seed Python, NumPy and each installed framework named (PyTorch, TensorFlow/Keras); returns the seed."""
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    if "torch" in frameworks and importlib.util.find_spec("torch"):
        import torch

        torch.manual_seed(seed)  # also seeds every CUDA device
    if "tensorflow" in frameworks and importlib.util.find_spec("tensorflow"):
        quiet_tensorflow()
        import keras

        keras.utils.set_random_seed(seed)  # Python, NumPy and the backend's own generator
    return seed


def quiet_tensorflow() -> None:
    """Silence TensorFlow's start-up chatter (C++ info logs), keeping warnings that matter."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def device() -> "torch.device":  # noqa: F821 - torch is imported lazily
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
