"""The tiny real build shared by the report, resume and rebuild tests (test_tinycnn on the embedded data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from edgeprune.config import BuildConfig, load_config

TINY_TOML = """\
seed = 0
[model]
name = "test_tinycnn"
[data]
max_train = 300
calib_size = 32
[train]
epochs = 1
[finetune]
epochs = 1
[prune]
flops_reduction = 0.5
tolerance = 0.05
[export]
precisions = {precisions}
export_dense = {export_dense}
[verify]
bootstrap = 200
[profile]
runs = 3
warmup = 1
threads = [1]
"""


def write_tiny_toml(folder: Path, precisions: tuple[str, ...] = ("fp32", "int8"), export_dense: bool = True) -> Path:
    """The tiny config as a TOML file (for `edgeprune build --config`); only the export section varies."""
    text = TINY_TOML.replace("{precisions}", json.dumps(list(precisions)))
    path = folder / "tiny.toml"
    path.write_text(text.replace("{export_dense}", str(export_dense).lower()), encoding="utf-8")
    return path


def tiny_config(folder: Path) -> BuildConfig:
    return load_config(write_tiny_toml(folder))


def tiny_run(factory: pytest.TempPathFactory) -> Path:
    """Build once per session into <basetemp>/tiny/run; later calls resume it (every stage is skipped)."""
    from edgeprune.pipeline import run_build

    base = factory.getbasetemp() / "tiny"
    base.mkdir(exist_ok=True)
    run_dir = base / "run"
    run_build(tiny_config(base), run_dir, console=Console(quiet=True), command=["pytest", "tiny-run"])
    return run_dir
