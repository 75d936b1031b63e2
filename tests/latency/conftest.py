"""Latency tests share one table cache per session (a lane is measured once) and a small net where latency is."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeprune.latency.cache import ENV_CACHE
from tests.latency._latnet import LatNet  # noqa: F401 - re-exported for the tests


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
