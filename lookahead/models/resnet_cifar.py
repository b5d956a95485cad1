"""ResNet-18 for 32x32 inputs, as in the DeVries & Taylor Cutout code used by the Lookahead paper:
3x3 stem without max-pool, stages of widths 64-128-256-512, about 11M parameters."""

from __future__ import annotations

import torch
from torch import nn

from lookahead.ranges import PositiveInt


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNetCifar(nn.Module):
    def __init__(
        self, num_blocks: tuple[int, ...] = (2, 2, 2, 2), num_classes: int = 10, width: int = 64
    ) -> None:
        super().__init__()
        self.in_planes = width
        self.conv1 = nn.Conv2d(3, width, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        stages = []
        for i, n in enumerate(num_blocks):
            stages.append(self._stage(width * 2**i, n, stride=1 if i == 0 else 2))
        self.layers = nn.Sequential(*stages)
        self.linear = nn.Linear(width * 2 ** (len(num_blocks) - 1), num_classes)

    def _stage(self, planes: int, n: int, stride: int) -> nn.Sequential:
        blocks = []
        for s in [stride] + [1] * (n - 1):
            blocks.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(torch.relu(self.bn1(self.conv1(x))))
        out = nn.functional.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


def resnet18_cifar(num_classes: int = 10, width: PositiveInt = 64) -> ResNetCifar:
    """The paper's CIFAR ResNet-18 (``width`` < 64 gives a thinner net for quick CPU smoke runs)."""
    return ResNetCifar((2, 2, 2, 2), num_classes=num_classes, width=width)
