"""One tiny real build per test session (reused by every report test and by tests/pipeline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.report.tiny import tiny_run


@pytest.fixture(scope="session")
def tiny_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_run(tmp_path_factory)
