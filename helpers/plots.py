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


# ---------------------------------------------------------------- training and evaluation plots (Chapter 8)


def plot_history(histories: dict, metric: str = "val_accuracy", ax=None, percent: bool | None = None,
                 title: str | None = None):
    """One learning curve per run: `metric` against epoch. Each value is a helpers.train.History, a Keras
    History.history dict, or any dict of lists with Keras' names (loss, accuracy, val_loss, val_accuracy)."""
    if ax is None:
        _, ax = plt.subplots()
    percent = "accuracy" in metric if percent is None else percent
    for name, history in histories.items():
        h = history.as_dict() if hasattr(history, "as_dict") else history
        values = np.asarray(h[metric], dtype=float) * (100 if percent else 1)
        epochs = h.get("epoch") or list(range(1, len(values) + 1))
        ax.plot(epochs[:len(values)], values, marker="o", ms=3, label=name)
    label = metric.replace("val_", "validation ").replace("_", " ")
    ax.set(xlabel="epoch", ylabel=label + (" (%)" if percent else ""), title=title or label)
    ax.legend()
    return ax


def plot_confusion(cm: np.ndarray, title: str = "Confusion matrix", ax=None, hide_diagonal: bool = False):
    """A confusion matrix (rows true, columns predicted) with the counts written in the cells."""
    cm = np.asarray(cm)
    shown = cm.copy()
    if hide_diagonal:
        np.fill_diagonal(shown, 0)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.imshow(shown, cmap="Blues")
    ax.grid(False)
    limit = shown.max() / 2 if shown.max() else 1
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j] and not (hide_diagonal and i == j):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if shown[i, j] > limit else "black")
    ax.set(xticks=range(cm.shape[1]), yticks=range(cm.shape[0]), xlabel="predicted digit", ylabel="true digit",
           title=title)
    return ax


def show_misclassified(images: np.ndarray, y_true: np.ndarray, probs: np.ndarray, n: int = 20, ncols: int = 10,
                       title: str = "Misclassified: predicted (true), model probability"):
    """A grid of the most confident mistakes: each titled 'pred (true)' with the probability given to pred."""
    y_true, probs = np.asarray(y_true), np.asarray(probs)
    pred = probs.argmax(1)
    wrong = np.flatnonzero(pred != y_true)
    wrong = wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")][:n]
    nrows = max(1, -(-len(wrong) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * 0.95, nrows * 1.25), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong, strict=False):
        ax.imshow(np.asarray(images[i]).reshape(28, 28), cmap="gray_r", interpolation="nearest")
        ax.set_title(f"{pred[i]} ({y_true[i]})\n{probs[i, pred[i]]:.0%}", fontsize=8, color="red", pad=2)
    fig.suptitle(title, fontsize=11)
    return fig
