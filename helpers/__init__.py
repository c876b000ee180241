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

# Chapter 8: models, the training loop, metrics and their plots (frameworks still imported lazily)
from . import metrics, models, train  # noqa: E402
from .plots import plot_confusion, plot_history, show_misclassified  # noqa: E402

__all__ += ["metrics", "models", "train", "plot_confusion", "plot_history", "show_misclassified"]

# Chapters 3-5: from-scratch NumPy building blocks and the environment check
from . import envcheck, scratch  # noqa: E402
from .envcheck import check_environment, limit_threads  # noqa: E402

__all__ += ["envcheck", "scratch", "check_environment", "limit_threads"]

# Chapter 7: fine-tuning (freezing, LoRA, few-shot subsets) and compression (pruning, int8, ONNX, TFLite, timing)
from . import compress, finetune  # noqa: E402

__all__ += ["compress", "finetune"]

# Chapter 9: your own digits (any image file to MNIST's conventions, labelled folders, predictions for files)
from . import custom, images  # noqa: E402
from .custom import load_folder, predict_files  # noqa: E402
from .images import preprocess  # noqa: E402

__all__ += ["custom", "images", "load_folder", "predict_files", "preprocess"]

# Chapters 10-11: generated tasks (numbers, detection, arithmetic text, IoU/AP), the Transformer from scratch,
# and data-parallel training with torch.distributed on one CPU
from . import parallel, tasks, transformer  # noqa: E402

__all__ += ["parallel", "tasks", "transformer"]
