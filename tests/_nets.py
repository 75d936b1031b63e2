"""A tiny conv net shared by tests that only need some valid model to convert and time."""

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
