"""Shared fixtures: the real MedMNIST files beside the checkout, and the slow-test switch."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow end-to-end runs are opt-in (EDGEPRUNE_SLOW=1 or -m slow), so the default suite stays short."""
    if os.environ.get("EDGEPRUNE_SLOW") == "1" or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with EDGEPRUNE_SLOW=1 (make test-slow)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny models on a shared 2-core machine: two OpenMP threads fighting for busy cores are many times slower
    than one. Used by the pruning and model-zoo tests; the previous thread count is restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def retinamnist() -> Path:
    path = SHARED_DATA / "retinamnist.npz"
    if not path.is_file():
        pytest.skip(f"real dataset not found at {path} (../shared/data beside the checkout)")
    return path
