"""Tiny models for fast tests, registered as test_tinycnn, test_resblock and test_dwsep.

The factories are not named test_* themselves so pytest never collects them when a test imports them.
"""

from __future__ import annotations

import torch
from torch import nn

from edgeprune.models.mobilenetv2 import init_weights


def _cbr(cin: int, cout: int, stride: int = 1, groups: int = 1, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    )


class TinyCNN(nn.Module):
    """Three conv-BN-ReLU layers (one at stride 2), GAP, Linear."""

    def __init__(self, num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(_cbr(in_channels, 8), _cbr(8, 16, stride=2), _cbr(16, 16))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(16, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class TinyResBlock(nn.Module):
    """Stem plus one residual block whose shortcut is a 1x1 conv + BN (stride and width change)."""

    def __init__(self, num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = _cbr(in_channels, 8)
        self.conv1 = _cbr(8, 16, stride=2)
        self.conv2 = nn.Conv2d(16, 16, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.shortcut = nn.Sequential(nn.Conv2d(8, 16, 1, 2, bias=False), nn.BatchNorm2d(16))
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(16, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        out = self.relu(self.bn2(self.conv2(self.conv1(x))) + self.shortcut(x))
        return self.classifier(torch.flatten(self.pool(out), 1))


class TinyDWSep(nn.Module):
    """Stem, a depthwise 3x3 + pointwise 1x1 block, GAP, Linear."""

    def __init__(self, num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = _cbr(in_channels, 8, stride=2)
        self.depthwise = _cbr(8, 8, groups=8)
        self.pointwise = _cbr(8, 16, kernel=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(16, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pointwise(self.depthwise(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))


def tiny_cnn(
    num_classes: int, in_channels: int = 3, pretrained: bool = False, input_size: int | None = None
) -> TinyCNN:
    del pretrained, input_size
    return TinyCNN(num_classes, in_channels)


def tiny_resblock(
    num_classes: int, in_channels: int = 3, pretrained: bool = False, input_size: int | None = None
) -> TinyResBlock:
    del pretrained, input_size
    return TinyResBlock(num_classes, in_channels)


def tiny_dwsep(
    num_classes: int, in_channels: int = 3, pretrained: bool = False, input_size: int | None = None
) -> TinyDWSep:
    del pretrained, input_size
    return TinyDWSep(num_classes, in_channels)
