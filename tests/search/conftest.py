"""A tiny trained dense model (test_tinycnn on the embedded data), shared by the search tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from edgeprune.config import BuildConfig, validate_config

BASE: dict[str, Any] = {
    "seed": 0,
    "model": {"name": "test_tinycnn"},
    "data": {"max_train": 300, "calib_size": 32},
    "train": {"epochs": 2},
    "search": {"trials": 3, "criteria": ["l1", "beta-rank"], "recovery_epochs": [1, 2], "objective": "macs"},
    "verify": {"bootstrap": 200, "max_bal_acc_drop": 40.0, "max_class_sensitivity_drop": 100.0},
    "export": {"precisions": ["fp32"], "export_dense": False},
    "profile": {"runs": 3, "warmup": 1, "threads": [1]},
}


def search_config(**sections: dict[str, Any]) -> BuildConfig:
    """The tiny config with some sections' keys changed."""
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    for name, changes in sections.items():
        data[name] = {**data.get(name, {}), **changes}
    return validate_config(data, "test")


def write_toml(path: Path, cfg: BuildConfig) -> Path:
    lines = [f"seed = {cfg.seed}"]
    dump = cfg.model_dump(mode="json", exclude_none=True)
    for section in ("model", "data", "train", "search", "verify", "export", "profile"):
        lines.append(f"[{section}]")
        for key, value in dump[section].items():
            if isinstance(value, bool):
                lines.append(f"{key} = {str(value).lower()}")
            elif isinstance(value, str):
                lines.append(f'{key} = "{value}"')
            elif isinstance(value, list):
                lines.append(f"{key} = {json.dumps(value)}")
            elif isinstance(value, int | float):
                lines.append(f"{key} = {value}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def dense_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory whose train stage is done (the search starts from its dense model)."""
    from edgeprune.pipeline import run_build

    run = tmp_path_factory.mktemp("search-dense") / "run"
    run_build(search_config(), run, to_stage="train", console=Console(quiet=True), command=["pytest", "dense"])
    return run


@pytest.fixture
def run_copy(dense_run: Path, tmp_path: Path) -> Path:
    """A fresh copy of the trained run (the train stage is reused, the search starts from scratch)."""
    run = tmp_path / "run"
    shutil.copytree(dense_run, run)
    return run
