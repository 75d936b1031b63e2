"""A small net for the latency tests (a user-model file for the CLI test too): channels where the time is."""

from __future__ import annotations

import torch
import torch.nn as nn


class LatNet(nn.Module):
    """stem 3->16 (protected), 16->32, 32->32 (3x3 convs), global mean, linear."""

    def __init__(self, num_classes: int = 3, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Conv2d(in_channels, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 32, 3, padding=1)
        self.classifier = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv3(torch.relu(self.conv2(torch.relu(self.stem(x))))))
        return self.classifier(x.mean(dim=(2, 3)))


def latnet(num_classes: int, in_channels: int = 3) -> nn.Module:
    return LatNet(num_classes, in_channels)
