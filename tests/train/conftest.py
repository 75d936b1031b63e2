"""Every training test runs with one torch thread (see ``one_torch_thread`` in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="module")
def _train_tests_use_one_thread(one_torch_thread: None) -> None:
    """Applies the shared single-thread fixture to every module in this folder."""
