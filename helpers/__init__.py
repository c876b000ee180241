"""helpers: the small, tested library the course's chapters import.

Plumbing (data, caches, figures, environment checks) is written here. What a chapter teaches is written in its
notebook, where the reader sees it, and saved to helpers/saved/chNN.py by scripts/save_helpers.py (`make helpers`)
for later chapters: `from helpers.saved.ch04 import lstm_forward`.

`import helpers` loads no deep-learning framework; the names marked (torch) import PyTorch on first use.

Run mode and paths   mode, is_quick, by_mode, describe_mode, repo_root, data_dir
Set-up               seed_everything, device, quiet_tensorflow, count_params
MNIST                load_mnist, MNISTError, split_train_val, subset, normalize, MEAN, STD, BACKGROUND, tf_dataset
Training (torch)     torch_loader, fit, evaluate, predict_proba
Figures              use_style, show_digits, plot_history, plot_confusion, show_misclassified
The machine          check_environment, limit_threads, describe_cpu
Your own digits      load_digit, load_folder, predict_files; widgets.DrawPad (draw a digit in JupyterLab);
                     `python -m helpers.predict PATH…` (any image files, from the command line)
Modules              metrics, plots, envcheck, images, custom, tasks (NumPy); train, torch_models, recipes,
                     compress, export, interop, parallel (PyTorch); keras_models (Keras); saved (the chapters' code)
"""

import importlib

from .core import (
    by_mode,
    count_params,
    data_dir,
    describe_mode,
    device,
    is_quick,
    mode,
    quiet_tensorflow,
    repo_root,
    seed_everything,
)
from .custom import load_digit, load_folder, predict_files
from .data import BACKGROUND, MEAN, STD, MNISTError, load_mnist, normalize, split_train_val, subset, tf_dataset
from .envcheck import check_environment, describe_cpu, limit_threads
from .plots import plot_confusion, plot_history, show_digits, show_misclassified, use_style

_LAZY_NAMES = {"torch_loader": "train", "fit": "train", "evaluate": "train", "predict_proba": "train"}
_LAZY_MODULES = {"train", "torch_models", "recipes", "compress", "export", "interop", "parallel", "keras_models",
                 "saved", "metrics", "envcheck", "images", "custom", "tasks", "plots", "data", "core", "widgets",
                 "predict"}

__all__ = [
    "mode", "is_quick", "by_mode", "describe_mode", "repo_root", "data_dir",
    "seed_everything", "device", "quiet_tensorflow", "count_params",
    "load_mnist", "MNISTError", "split_train_val", "subset", "normalize", "MEAN", "STD", "BACKGROUND", "tf_dataset",
    "torch_loader", "fit", "evaluate", "predict_proba",
    "use_style", "show_digits", "plot_history", "plot_confusion", "show_misclassified",
    "check_environment", "limit_threads", "describe_cpu",
    "load_digit", "load_folder", "predict_files",
]


def __getattr__(name: str):
    """Import PyTorch-backed names and modules on first use, so that `import helpers` stays fast."""
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f".{_LAZY_NAMES[name]}", __name__), name)
    if name in _LAZY_MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'helpers' has no attribute {name!r}")
