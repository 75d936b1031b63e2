"""Single-purpose entry points behind `edgeprune train` and `edgeprune profile FILE`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from edgeprune.config import BuildConfig
from edgeprune.errors import EdgepruneError
from edgeprune.fsutil import sha256_file
from edgeprune.pipeline.checkpoints import save_checkpoint
from edgeprune.pipeline.context import BuildContext
from edgeprune.train import distributed


def train_checkpoint(cfg: BuildConfig, out: Path, console: Console | None = None) -> dict[str, Any]:
    """Train the configured model and save its weights to ``out`` (rank 0 only under torchrun)."""
    from edgeprune.pipeline.recovery import train_settings
    from edgeprune.pipeline.stages import _log_epoch, _test_summary
    from edgeprune.train import train_model

    ctx = BuildContext(cfg=cfg, run_dir=out.parent, console=console or Console())
    data = ctx.data
    model = ctx.fresh_model(pretrained=cfg.model.pretrained)
    result = train_model(model, data.train, data.val, data.num_classes, train_settings(ctx, cfg.train),
                         on_epoch=_log_epoch(ctx, "train") if distributed.is_main() else None)
    summary = {"train": result.summary(), "world_size": distributed.world_size(),
               "ranks_in_sync": distributed.params_in_sync(result.model)}
    if distributed.is_main():
        summary["test"] = _test_summary(ctx, result.model)
        save_checkpoint(out, result.model, meta={"model": cfg.model.model_dump(), "data": data.info["source"],
                                                 "class_names": data.contract.class_names,
                                                 "preprocessing": data.contract.model_dump()})
        summary["sha256"] = sha256_file(out)
    distributed.barrier()
    return summary


def profile_file(path: Path, devices: list[str], threads: list[int], warmup: int, runs: int) -> list[Any]:
    """Benchmark one model file on each device; returns Measurement records."""
    from edgeprune.devices import BenchSpec, open_device

    if not path.is_file():
        raise EdgepruneError(f"model file {path} does not exist", "give the path of a .tflite artifact")
    if path.suffix != ".tflite":
        raise EdgepruneError(f"{path.name} is not a .tflite file", "profile a .tflite artifact or a run directory")
    sha = sha256_file(path)
    out = []
    for spec in devices:
        out += open_device(spec).benchmark(path, BenchSpec(threads=threads, warmup=warmup, runs=runs), path.stem, sha)
    return out
