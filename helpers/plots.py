"""The course's one figure style and the plots several chapters share."""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

STYLE = {
    "figure.figsize": (6.4, 3.6),
    "figure.dpi": 80,  # small PNGs keep the notebooks light
    "savefig.dpi": 80,
    "figure.autolayout": True,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "image.cmap": "gray",
}


def use_style() -> None:
    """Apply the course's figure style to every later matplotlib figure."""
    mpl.rcParams.update(STYLE)


def show_digits(images: np.ndarray, labels=None, predictions=None, ncols: int = 10, title: str | None = None,
                size: float = 0.9):
    """A grid of digit images titled with their labels; wrong predictions are shown in red as 'pred (true)'."""
    images = np.asarray(images)
    n = len(images)
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * (size + 0.25)), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(images[i].reshape(28, 28) if images[i].size == 784 else images[i], cmap="gray_r",
                  interpolation="nearest")
        text, color = "", "black"
        if labels is not None:
            text = str(int(labels[i]))
        if predictions is not None:
            wrong = labels is not None and int(predictions[i]) != int(labels[i])
            text = f"{int(predictions[i])} ({text})" if wrong else str(int(predictions[i]))
            color = "red" if wrong else "black"
        ax.set_title(text, fontsize=9, color=color, pad=2)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig
