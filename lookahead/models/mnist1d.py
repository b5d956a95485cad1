"""Small models for MNIST-1D (1 x 40 signals, 10 classes)."""

from __future__ import annotations

import torch
from torch import nn


def mlp(num_classes: int = 10, input_length: int = 40, hidden: int = 100, depth: int = 2) -> nn.Sequential:
    """The MNIST-1D paper's MLP: ``depth`` hidden ReLU layers of width ``hidden``."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = input_length
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def cnn(num_classes: int = 10, input_length: int = 40, channels: int = 25) -> nn.Sequential:
    """The MNIST-1D paper's 1-D CNN: three stride-2 convolutions and a linear head."""
    features = nn.Sequential(
        nn.Conv1d(1, channels, 5, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv1d(channels, channels, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv1d(channels, channels, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
    )
    with torch.no_grad():
        width = features(torch.zeros(1, 1, input_length)).shape[1]
    return nn.Sequential(*features, nn.Linear(width, num_classes))
