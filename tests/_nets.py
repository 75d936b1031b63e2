"""Tiny nets shared by tests: one any converter accepts, one that converters must refuse."""

from __future__ import annotations

import torch


class TinyConvNet(torch.nn.Module):
    """conv -> relu -> global mean -> linear: 3 classes on RGB inputs of any size."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.head = torch.nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3)))


class DataDependent(torch.nn.Module):
    """Python control flow on tensor values: tracing would silently keep one branch, torch.export cannot convert
    it, so every exporter must refuse it and leave no file."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.mean() > 0:
            return x.mean(dim=(2, 3))
        return -x.mean(dim=(2, 3))
