"""CIFAR-style ResNet-20/56 (three stages of BasicBlocks, widths 16/32/64).

Shortcuts are 1x1 conv + BN ("option B") whenever the stride or width changes. The zero-padding
"option A" shortcut of the original paper is deliberately not offered: torch-pruning's DepGraph merges
residual streams through it and pruning then fails (shared/docs/methods.md section 1.11).
"""

from __future__ import annotations

import torch
from torch import nn

from edgeprune.models.mobilenetv2 import check_width, init_weights


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus shortcut, then ReLU."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for small images: 3x3 stem at stride 1, stages at strides 1, 2, 2."""

    def __init__(self, depth: int, num_classes: int, in_channels: int = 3, width_mult: float = 1.0) -> None:
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        blocks_per_stage = (depth - 2) // 6
        widths = [max(1, round(w * width_mult)) for w in (16, 32, 64)]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        cin = widths[0]
        stages = []
        for i, width in enumerate(widths):
            blocks = []
            for j in range(blocks_per_stage):
                blocks.append(BasicBlock(cin, width, 2 if (i > 0 and j == 0) else 1))
                cin = width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cin, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))


def resnet20(
    num_classes: int,
    in_channels: int = 3,
    pretrained: bool = False,
    width_mult: float = 1.0,
    input_size: int | None = None,
) -> CifarResNet:
    """ResNet-20 (3 blocks per stage, ~0.27M parameters at width 1)."""
    del pretrained, input_size  # no pretrained weights; any input size >= 4 px works
    return CifarResNet(20, num_classes, in_channels, check_width(width_mult))


def resnet56(
    num_classes: int,
    in_channels: int = 3,
    pretrained: bool = False,
    width_mult: float = 1.0,
    input_size: int | None = None,
) -> CifarResNet:
    """ResNet-56 (9 blocks per stage, ~0.86M parameters at width 1)."""
    del pretrained, input_size
    return CifarResNet(56, num_classes, in_channels, check_width(width_mult))
