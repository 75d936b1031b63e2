"""A small CIFAR-style VGG-11 with BatchNorm, global average pooling and a single Linear classifier.

Only four max-pools are used (the fifth of the ImageNet VGG is dropped): global pooling follows anyway,
and 28 px MedMNIST images would otherwise shrink to zero.
"""

from __future__ import annotations

import torch
from torch import nn

from edgeprune.models.mobilenetv2 import check_width, init_weights

# Channel counts; "M" is a 2x2 max-pool.
_VGG11 = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512]


class VGG(nn.Module):
    """Plain conv3x3-BN-ReLU stack from a config list, then GAP + Linear."""

    def __init__(
        self, config: list[int | str], num_classes: int, in_channels: int = 3, width_mult: float = 1.0
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            cout = max(1, round(int(item) * width_mult))
            layers += [nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cin, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def vgg11_bn(
    num_classes: int,
    in_channels: int = 3,
    pretrained: bool = False,
    width_mult: float = 1.0,
    input_size: int | None = None,
) -> VGG:
    """VGG-11-BN for small images (needs at least 16 px input)."""
    del pretrained, input_size
    return VGG(_VGG11, num_classes, in_channels, check_width(width_mult))
