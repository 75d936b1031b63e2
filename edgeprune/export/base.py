"""Export-target framework: one Exporter subclass per (format, backend), shared checks done once here.

``Exporter.export`` validates the request, checks optional dependencies, runs the format-specific
``_export`` into a private temporary directory inside ``out_dir``, embeds the metadata, reads the file back
(tensor info + quantization actually present), hashes it and only then renames it into place. A failed
conversion therefore never leaves a file behind.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from edgeprune import __version__
from edgeprune.errors import EdgepruneError
from edgeprune.fsutil import sha256_file
from edgeprune.optional import require
from edgeprune.registry import Registry
from edgeprune.schemas import BundleArtifact, TensorInfo

if TYPE_CHECKING:
    import torch

LAYOUTS = ("NCHW", "NHWC")


class ArtifactRecord(BaseModel):
    """One exported model file, described from the file itself (not from what was asked for)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="file stem, e.g. 'model_int8'")
    file: str = Field(description="path relative to the output directory")
    format: str
    backend: str
    precision: str = Field(description="requested: fp32 | fp16 | dynamic-int8 | int8 ...")
    quantization: str = Field(
        description="read back from the file: none | fp16-weights | dynamic-int8 | full-int8 ..."
    )
    sha256: str
    size_bytes: int
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    io_layout: str
    export_seconds: float
    calibration_ids: list[int] | None = None
    notes: list[str] = Field(default_factory=list)

    def bundle_artifact(self, file: str | None = None) -> BundleArtifact:
        """The app-bundle view of this artifact (``file`` relative to the bundle root)."""
        return BundleArtifact(
            file=file or self.file, format=self.format, precision=self.precision, quantization=self.quantization,
            sha256=self.sha256, size_bytes=self.size_bytes, inputs=self.inputs, outputs=self.outputs,
        )  # fmt: skip


@dataclass
class ExportRequest:
    """What to export and where. Tensors are float32, normalised, NCHW."""

    model: torch.nn.Module
    example_input: torch.Tensor
    precision: str
    out_dir: Path
    name: str
    calib_inputs: torch.Tensor | None = None
    calib_ids: list[int] | None = None
    io_layout: str = "NCHW"
    metadata: dict[str, Any] = field(default_factory=dict)
    io_dtype: str | None = None  # float32 | int8 | uint8 | int16 I/O of quantized files (None: the precision's default)


class ExportFailedError(EdgepruneError):
    """The converter itself failed (unsupported model or op); nothing was written."""


class Exporter(ABC):
    """Base class of every export target; subclasses implement ``_export`` (and usually ``describe``)."""

    format: ClassVar[str]
    backend: ClassVar[str]
    suffix: ClassVar[str]
    precisions: ClassVar[tuple[str, ...]]
    requires: ClassVar[dict[str, str]] = {}
    layouts: ClassVar[tuple[str, ...]] = ("NCHW",)
    calibrated: ClassVar[frozenset[str]] = frozenset()  # precisions that need calib_inputs
    needs_calibration: ClassVar[frozenset[str]] = frozenset()  # declared capability (new name of calibrated)
    io_dtypes: ClassVar[Mapping[str, tuple[str, ...]]] = {}  # precision -> allowed I/O dtypes, default first
    expected: ClassVar[dict[str, str]] = {}  # precision -> quantization the file should show
    backend_dist: ClassVar[str | None] = None  # pip distribution whose version is recorded

    @property
    def key(self) -> str:
        return f"{self.format}:{self.backend}"

    # -- shared pipeline ---------------------------------------------------------------------------
    def check(self, req: ExportRequest) -> None:
        """Reject bad requests before any heavy work."""
        if req.precision not in self.precisions:
            raise EdgepruneError(
                f"precision '{req.precision}' is not supported by the {self.key} exporter",
                f"use one of: {', '.join(self.precisions)}",
            )
        if req.io_layout not in self.layouts:
            raise EdgepruneError(
                f"io_layout '{req.io_layout}' is not supported by the {self.key} exporter",
                f"use one of: {', '.join(self.layouts)}",
            )
        if not req.name or any(c in req.name for c in "/\\") or req.name.startswith("."):
            raise EdgepruneError(
                f"invalid artifact name '{req.name}'", "use a plain file stem such as 'model_int8'"
            )
        shape = tuple(getattr(req.example_input, "shape", ()))
        if len(shape) != 4:
            raise EdgepruneError(
                f"example_input must be a (1,C,H,W) tensor, got shape {shape}", "pass one image batch"
            )
        if getattr(req.model, "training", False):
            raise EdgepruneError("the model is in training mode", "call model.eval() before exporting")
        if req.precision in self.calibrated:
            calib = req.calib_inputs
            if calib is None or len(calib) == 0:
                raise EdgepruneError(
                    f"precision '{req.precision}' needs calibration images",
                    "pass calib_inputs (N,C,H,W) normalised",
                )
            if tuple(calib.shape[1:]) != shape[1:]:
                raise EdgepruneError(
                    f"calib_inputs have shape {tuple(calib.shape)} but the model input is {shape}",
                    "preprocess calibration images exactly like example_input",
                )
            if req.calib_ids is not None and len(req.calib_ids) != len(calib):
                raise EdgepruneError(
                    f"{len(req.calib_ids)} calib_ids for {len(calib)} calibration images",
                    "pass one id per calibration image",
                )

    def export(self, req: ExportRequest) -> ArtifactRecord:
        """Export, read back and hash one artifact; the file appears in ``out_dir`` only on success."""
        self.check(req)
        for module, extra in self.requires.items():
            require(module, extra)
        out_dir = Path(req.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        final = out_dir / f"{req.name}{self.suffix}"
        work = Path(tempfile.mkdtemp(prefix=f".{req.name}.", suffix=".export", dir=out_dir))
        try:
            tmp = work / final.name
            start = time.perf_counter()
            try:
                self._export(req, tmp)
            except EdgepruneError:
                raise
            except Exception as exc:  # converter errors: report them as one line, keep the cause
                msg = (str(exc).strip().splitlines() or [""])[0][:300]
                raise ExportFailedError(
                    f"{self.key} export of '{req.name}' ({req.precision}) failed: {type(exc).__name__}: {msg}",
                    "check that the model uses standard CNN ops, or try another precision or backend",
                ) from exc
            if not tmp.exists() or _size(tmp) == 0:
                raise ExportFailedError(
                    f"{self.key} export of '{req.name}' wrote no data", "see the converter log"
                )
            self.embed_metadata(tmp, self.metadata_for(req))
            seconds = time.perf_counter() - start
            quantization, inputs, outputs = self.describe(tmp)
            self._check_layout(req, inputs)
            record = ArtifactRecord(
                name=req.name, file=final.name, format=self.format, backend=self.backend,
                precision=req.precision, quantization=quantization, sha256=_digest(tmp), size_bytes=_size(tmp),
                inputs=inputs, outputs=outputs, io_layout=req.io_layout, export_seconds=round(seconds, 3),
                calibration_ids=list(req.calib_ids) if req.precision in self.calibrated and req.calib_ids else None,
                notes=self.notes(req, quantization, inputs, outputs),
            )  # fmt: skip
            _replace(tmp, final)
            return record
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def metadata_for(self, req: ExportRequest) -> dict[str, Any]:
        """The dict embedded in the artifact: the caller's metadata plus an 'export' section."""
        info: dict[str, Any] = {
            "format": self.format, "backend": self.backend, "precision": req.precision,
            "io_layout": req.io_layout, "name": req.name, "edgeprune_version": __version__,
        }  # fmt: skip
        if self.backend_dist:
            try:
                info["backend_version"] = importlib.metadata.version(self.backend_dist)
            except importlib.metadata.PackageNotFoundError:
                pass
        return {**req.metadata, "export": info}

    def notes(
        self, req: ExportRequest, quantization: str, inputs: list[TensorInfo], outputs: list[TensorInfo]
    ) -> list[str]:
        """Human-readable facts about the file that a caller could trip over."""
        notes = []
        want = self.expected.get(req.precision)
        if want and quantization != want:
            notes.append(
                f"requested {req.precision} but the file is quantized as '{quantization}' (expected '{want}')"
            )
        for kind, tensors in (("input", inputs), ("output", outputs)):
            for t in tensors:
                if t.dtype in ("int8", "uint8", "int16"):
                    notes.append(
                        f"{kind} '{t.name}' is {t.dtype} (scale={t.quant_scale}, zero_point={t.quant_zero_point}); "
                        "quantize/dequantize at the boundary"
                    )
        return notes

    def _check_layout(self, req: ExportRequest, inputs: list[TensorInfo]) -> None:
        if not inputs or len(inputs[0].shape) != 4:
            return
        c = int(req.example_input.shape[1])
        shape = inputs[0].shape
        if (req.io_layout == "NCHW" and shape[1] != c) or (req.io_layout == "NHWC" and shape[3] != c):
            raise ExportFailedError(
                f"{self.key} produced input shape {shape}, which is not {req.io_layout} with {c} channels",
                "report this as a bug in the exporter",
            )

    # -- format-specific hooks ----------------------------------------------------------------------
    @abstractmethod
    def _export(self, req: ExportRequest, tmp_path: Path) -> None:
        """Write the artifact to ``tmp_path`` (a file or directory named like the final artifact)."""

    def describe(self, path: Path) -> tuple[str, list[TensorInfo], list[TensorInfo]]:
        """(quantization, inputs, outputs) read back from the file; default: ask the runtime."""
        from edgeprune.runtimes import open_session

        session = open_session(path, self.format)
        return "unknown", session.inputs, session.outputs

    def embed_metadata(self, path: Path, metadata: dict[str, Any]) -> None:
        """Store ``metadata`` inside the artifact; formats without a metadata slot keep the default no-op."""
        del path, metadata


EXPORTERS: Registry[type[Exporter]] = Registry("export target")


def register_exporter(primary: bool = False):
    """Class decorator: register under 'format:backend', and under 'format' too for the primary backend."""

    def decorator(cls: type[Exporter]) -> type[Exporter]:
        EXPORTERS.add(f"{cls.format}:{cls.backend}", cls)
        if primary:
            EXPORTERS.add(cls.format, cls)
        return cls

    return decorator


def get_exporter(target: str, backend: str | None = None) -> Exporter:
    """An exporter instance for 'tflite', 'tflite:litert-torch' or ('tflite', backend='litert-torch')."""
    key = f"{target}:{backend}" if backend and ":" not in target else target
    return EXPORTERS.get(key)()


def export_targets() -> list[dict[str, Any]]:
    """Capability table derived from the registry (one row per format:backend)."""
    primary = {cls for name, cls in EXPORTERS.items() if ":" not in name}
    rows = []
    for name, cls in EXPORTERS.items():
        if ":" not in name:
            continue
        missing = [m for m in cls.requires if importlib.util.find_spec(m.split(".")[0]) is None]
        rows.append({
            "target": name, "format": cls.format, "backend": cls.backend, "suffix": cls.suffix,
            "precisions": list(cls.precisions), "layouts": list(cls.layouts), "primary": cls in primary,
            "available": not missing, "extras": sorted({cls.requires[m] for m in missing}),
        })  # fmt: skip
    return rows


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _digest(path: Path) -> str:
    """sha256 of a file, or of a directory's sorted (relative path, content) pairs."""
    if not path.is_dir():
        return sha256_file(path)
    h = hashlib.sha256()
    for p in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(p.relative_to(path).as_posix().encode() + b"\0" + sha256_file(p).encode() + b"\n")
    return h.hexdigest()


def _replace(tmp: Path, final: Path) -> None:
    """Atomically move ``tmp`` onto ``final`` (same directory, so same filesystem)."""
    if tmp.is_dir() and final.exists():
        shutil.rmtree(final) if final.is_dir() else final.unlink()
    os.replace(tmp, final)
