"""Small models for MNIST-1D (1 x 40 signals, 10 classes)."""

from __future__ import annotations

import torch
from torch import nn

from lookahead.ranges import Count, PositiveInt


def mlp(
    num_classes: int = 10, input_length: int = 40, hidden: PositiveInt = 100, depth: Count = 2
) -> nn.Sequential:
    """The MNIST-1D paper's MLP: ``depth`` hidden ReLU layers of width ``hidden``."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = input_length
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def cnn(
    num_classes: int = 10, input_length: int = 40, channels: PositiveInt = 25, batch_norm: bool = False
) -> nn.Sequential:
    """The MNIST-1D paper's 1-D CNN: three stride-2 convolutions and a linear head; ``batch_norm`` adds
    BatchNorm after each convolution (to study BatchNorm statistics under Lookahead's slow weights)."""
    layers: list[nn.Module] = []
    for i, (c_in, kernel) in enumerate(((1, 5), (channels, 3), (channels, 3))):
        layers.append(nn.Conv1d(c_in if i == 0 else channels, channels, kernel, stride=2, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm1d(channels))
        layers.append(nn.ReLU())
    features = nn.Sequential(*layers, nn.Flatten())
    with torch.no_grad():
        width = features(torch.zeros(1, 1, input_length)).shape[1]
    return nn.Sequential(*features, nn.Linear(width, num_classes))
