"""helpers: the small, tested library the course's chapters grow and import.

Frameworks (PyTorch, TensorFlow) are imported lazily inside the functions that need them, so
`import helpers` stays fast.
"""

from .core import by_mode, data_dir, describe_mode, device, is_quick, mode, quiet_tensorflow, seed_everything
from .data import MEAN, STD, MNISTError, load_mnist, normalize, split_train_val, subset, tf_dataset, torch_loader
from .plots import show_digits, use_style

__all__ = [
    "MEAN", "STD", "MNISTError", "by_mode", "data_dir", "describe_mode", "device", "is_quick", "load_mnist", "mode",
    "normalize", "quiet_tensorflow", "seed_everything", "show_digits", "split_train_val", "subset", "tf_dataset",
    "torch_loader", "use_style",
]
