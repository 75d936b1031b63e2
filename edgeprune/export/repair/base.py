"""The pieces every repair rung uses: the ladder's inputs, the export configuration it refines, one attempt.

An attempt is the dict the report keeps: ``{"rung", "step", "status": passed|failed|skipped|unavailable|error,
"reason", "config", "artifact" (the ArtifactRecord), "path", "gate", "metrics", "evaluation" (all ``evaluate``
returned), "seconds"}``; float-layers attempts also carry the layer ``ranking``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from edgeprune.errors import EdgepruneError
from edgeprune.export.base import EXPORTERS, ArtifactRecord, Exporter, ExportRequest

Attempt = dict[str, Any]
Evaluate = Callable[[Path], dict[str, Any]]


@dataclass
class RepairInputs:
    """What the ladder needs besides the failing artifact (the pipeline builds it from a run)."""

    model: Any  # the float torch module the artifact was exported from (eval mode)
    example_input: Any  # (1,C,H,W) normalised tensor
    train_x: Any  # (N,C,H,W) normalised tensor: the pool calibration sets are drawn from
    train_y: Any  # (N,) labels
    calib_ids: list[int]
    out_dir: Path
    metadata: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    calib_factor: int = 4
    max_float_groups: int = 2
    rank_samples: int = 16
    qat_epochs: int = 3  # quantization-aware training: at most this many epochs, each judged on validation
    qat_lr: float = 1e-3
    qat_max_images: int = 1024  # QAT epochs pass over a class-stratified subset this large (224 px QAT is slow)
    log: Callable[[str], None] = lambda _msg: None


@dataclass
class RepairConfig:
    """The export settings the ladder refines rung by rung (each rung builds on what the earlier ones set)."""

    backend: str
    precision: str
    calib_ids: list[int]
    io_dtype: str
    io_layout: str
    float_nodes: tuple[str, ...] = ()

    def as_report(self) -> dict[str, Any]:
        return {"backend": self.backend, "precision": self.precision, "calib_size": len(self.calib_ids),
                "io_dtype": self.io_dtype, "io_layout": self.io_layout}  # fmt: skip


@dataclass
class LadderRun:
    """One ladder climb: inputs, the failing artifact, the current configuration and what rungs learnt."""

    inputs: RepairInputs
    artifact: dict[str, Any]
    config: RepairConfig
    evaluate: Evaluate
    int8_file: Path  # the latest full-int8 file (the float-layers ranking compares against it)
    ranking: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.artifact["name"])

    def try_int8(self, number: int, step: str, suffix: str, reason: str) -> Attempt:
        """Try the current configuration (still full int8); its file becomes the one later rungs compare with."""
        att = try_variant(self, self.config, f"{self.name}_{suffix}", number, step, reason)
        self.int8_file = Path(att.get("path", self.int8_file))
        return att


class Rung(ABC):
    """One step of the ladder; ``attempts`` yields skipped / unavailable / tried variants in order."""

    step: ClassVar[str]

    @abstractmethod
    def attempts(self, run: LadderRun, number: int) -> Iterator[Attempt]:
        """Try this rung's variants for ``run`` (``number`` is the rung's place in the full ladder)."""


def attempt(number: int, step: str, status: str, reason: str, cfg: RepairConfig | None = None) -> Attempt:
    """An attempt without a file (skipped, unavailable) or the start of one."""
    out: Attempt = {"rung": number, "step": step, "status": status, "reason": reason}
    if cfg is not None:
        out["config"] = cfg.as_report()
    return out


def exporter_for(cfg: RepairConfig, float_modules: tuple[str, ...] = ()) -> Exporter:
    """The TFLite exporter that makes ``cfg`` (with ``float_modules`` kept in float on litert-torch)."""
    from edgeprune.export.tflite_litert_variants import AEQInt16Exporter, PT2EFloatLayersExporter

    if cfg.precision == "int16x8" and cfg.backend == "litert-torch":
        return AEQInt16Exporter()
    if cfg.backend == "onnx2tf":
        from edgeprune.export.tflite_onnx2tf import Onnx2tfExporter

        return Onnx2tfExporter(float_nodes=cfg.float_nodes)
    if float_modules:
        return PT2EFloatLayersExporter(float_modules)
    return EXPORTERS.get(f"tflite:{cfg.backend}")()


def request(inp: RepairInputs, cfg: RepairConfig, name: str, out_dir: Path | None = None,
            note: dict | None = None) -> ExportRequest:  # fmt: skip
    """The export request of one variant (calibration images drawn from the train split by id)."""
    import torch

    ids = list(cfg.calib_ids)
    return ExportRequest(
        model=inp.model, example_input=inp.example_input, precision=cfg.precision, out_dir=Path(out_dir or inp.out_dir),
        name=name, calib_inputs=torch.as_tensor(inp.train_x)[ids], calib_ids=ids, io_layout=cfg.io_layout,
        metadata={**inp.metadata, "repair": note} if note else inp.metadata, io_dtype=cfg.io_dtype,
    )  # fmt: skip


def try_variant(run: LadderRun, cfg: RepairConfig, name: str, number: int, step: str, reason: str,
                float_modules: tuple[str, ...] = (), exporter: Exporter | None = None) -> Attempt:  # fmt: skip
    """Export one variant (with ``exporter``, else the one ``cfg`` names) and put it through ``evaluate``;
    conversion errors become an 'error' attempt."""
    inp = run.inputs
    out = attempt(number, step, "error", reason, cfg)
    start = time.perf_counter()
    note = {"of": name.split("_repair")[0], "rung": number, "step": step, "reason": reason}
    try:
        maker = exporter if exporter is not None else exporter_for(cfg, float_modules)
        record: ArtifactRecord = maker.export(request(inp, cfg, name, note=note))
        path = Path(inp.out_dir) / record.file
        result = run.evaluate(path)
    except EdgepruneError as exc:
        out["reason"] = f"{reason}; failed: {exc}"
        out["seconds"] = round(time.perf_counter() - start, 2)
        return out
    passed = bool(result.get("gate", {}).get("passed"))
    out.update(status="passed" if passed else "failed", artifact=record.model_dump(), path=str(path),
               gate=result.get("gate"), metrics=result.get("metrics"), evaluation=result,
               seconds=round(time.perf_counter() - start, 2))  # fmt: skip
    if cfg.float_nodes or float_modules:
        out["config"]["float_layers"] = list(float_modules or cfg.float_nodes)
    return out
