"""Latency tests share one table cache per session (a lane is measured once) and a small net where latency is."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from edgeprune.latency.cache import ENV_CACHE


class LatNet(nn.Module):
    """stem 3->16 (protected), 16->32, 32->32 (3x3 convs at 32x32), global mean, linear: channels where time is."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 32, 3, padding=1)
        self.classifier = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv3(torch.relu(self.conv2(torch.relu(self.stem(x))))))
        return self.classifier(x.mean(dim=(2, 3)))


@pytest.fixture(scope="session")
def latency_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One cache directory for the whole session: later tests reuse what earlier ones measured."""
    path = tmp_path_factory.mktemp("latency-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV_CACHE, str(path))
        yield path


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread: None) -> None:
    """Tracing and exporting tiny modules: one torch thread on the shared cores."""
