"""The course's run mode, paths, seeding, device choice and parameter count: what every chapter shares."""

from __future__ import annotations

import contextlib
import os
import random
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    import torch

T = TypeVar("T")

MODE_VARIABLE = "COURSE_MODE"
MODES = ("full", "quick")
ROOT_VARIABLE = "COURSE_ROOT"
DATA_VARIABLE = "COURSE_DATA_DIR"


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


def _is_course_root(folder: Path) -> bool:
    return (folder / "requirements.txt").is_file() and (folder / "notebooks").is_dir()


def repo_root() -> Path:
    """The course's repository: $COURSE_ROOT, else the working tree this package sits in, else one above the
    current folder (a plain `pip install .` puts the package in site-packages, far from the repository)."""
    if os.environ.get(ROOT_VARIABLE):
        root = Path(os.environ[ROOT_VARIABLE]).expanduser().resolve()
        if not _is_course_root(root):
            raise FileNotFoundError(f"{ROOT_VARIABLE}={root} is not the course's repository (no requirements.txt "
                                    "and notebooks/ there); point it at the folder you cloned")
        return root
    candidates = [Path(__file__).resolve().parent.parent, Path.cwd().resolve(), *Path.cwd().resolve().parents]
    for folder in candidates:
        if _is_course_root(folder):
            return folder
    raise FileNotFoundError(f"helpers is used outside the course's repository ({Path(__file__).parent}); run from "
                            f"the cloned folder, install it with `pip install -e .`, or set {ROOT_VARIABLE}")


def data_dir() -> Path:
    """The local data cache: $COURSE_DATA_DIR if set, else the repository's data/ folder."""
    path = Path(os.environ.get(DATA_VARIABLE) or repo_root() / "data")
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


def count_params(model: Any, trainable_only: bool = False) -> int:
    """Number of parameters of a PyTorch module or a Keras model (trainable_only: those an optimizer updates).

    BatchNorm's running mean and variance are not parameters in either framework (PyTorch keeps them as buffers;
    Keras lists them among its weights, so they are left out here), so the two frameworks' counts agree.
    """
    if hasattr(model, "count_params"):  # Keras
        weights = model.trainable_weights if trainable_only else [
            w for w in model.weights if w.name not in ("moving_mean", "moving_variance")]
        return int(sum(int(np.prod(w.shape)) for w in weights))
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def describe_mode(**settings: object) -> str:
    """One line naming the run mode and its settings, e.g. 'full mode: 60,000 training images · 5 epochs'."""
    parts = [f"{v:,} {k.replace('_', ' ')}" if isinstance(v, int) else f"{k.replace('_', ' ')} {v}"
             for k, v in settings.items()]
    return f"{mode()} mode: " + " · ".join(parts)
