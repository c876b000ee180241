"""The course's PyTorch networks (Chapters 6-8): an MLP, the course CNN, an LSTM over image rows and the network of
the official PyTorch MNIST example. Each takes normalised images (N, 1, 28, 28) and returns logits (N, 10).
The Keras twins are in helpers.keras_models.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn


def torch_mlp(hidden: tuple[int, ...] = (512, 256), dropout: float = 0.2) -> nn.Sequential:
    """A multilayer perceptron: flatten, then Linear-ReLU-Dropout per hidden layer, then Linear to 10 logits."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = 28 * 28
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
        width = h
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


def conv_block(cin: int, cout: int, batchnorm: bool = True) -> nn.Sequential:
    """3×3 convolution, BatchNorm, ReLU: the course CNN's building block; keeps the height and width.

    BatchNorm's shift makes the convolution's bias redundant; without BatchNorm the convolution keeps its bias."""
    if not batchnorm:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True))
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CourseCNN(nn.Module):
    """Five 3×3 conv-BatchNorm-ReLU blocks (one at 28×28, two at 14×14, two at 7×7) and one linear layer."""

    def __init__(self, width: int = 16, dropout: float = 0.1, batchnorm: bool = True):
        super().__init__()
        w, block = width, partial(conv_block, batchnorm=batchnorm)
        self.features = nn.Sequential(
            block(1, w), nn.MaxPool2d(2),                           # (N, 1, 28, 28) -> (N, w, 14, 14)
            block(w, 2 * w), block(2 * w, 2 * w), nn.MaxPool2d(2),  # -> (N, 2w, 7, 7)
            block(2 * w, 4 * w), block(4 * w, 4 * w),               # -> (N, 4w, 7, 7)
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(4 * w * 7 * 7, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def torch_cnn(width: int = 16, dropout: float = 0.1) -> CourseCNN:
    """The course CNN: `features` (5 conv blocks, 2 max-pools) and `classifier` (dropout, linear); ~0.1 M params."""
    return CourseCNN(width, dropout)


class RowLSTM(nn.Module):
    """Reads an image as a sequence of 28 rows of 28 pixels; classifies from the last hidden state."""

    def __init__(self, hidden: int = 128, layers: int = 1):
        super().__init__()
        self.lstm = nn.LSTM(28, hidden, num_layers=layers, batch_first=True)
        self.classifier = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(x.shape[0], 28, 28)  # (N, 1, 28, 28) -> (N, time = 28 rows, features = 28 pixels)
        out, _ = self.lstm(rows)
        return self.classifier(out[:, -1])


def torch_lstm(hidden: int = 128, layers: int = 1) -> RowLSTM:
    """An LSTM over the 28 image rows (each a 28-pixel vector), then a linear layer on the last hidden state."""
    return RowLSTM(hidden, layers)


def torch_official_cnn() -> nn.Sequential:
    """The network of the official PyTorch MNIST example (pytorch/examples mnist/main.py): 1.2 M parameters."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
        nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10),
    )
