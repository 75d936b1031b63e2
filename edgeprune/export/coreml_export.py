"""Core ML ``.mlpackage`` (ML program) through coremltools: torch.export -> ct.convert -> weight compression.

Precisions (the name selects the minimum deployment target, so no extra option is needed):

=============  ======  ======================================================================
precision      target  what the file holds
=============  ======  ======================================================================
fp32           iOS16   fp32 weights and compute (reference for the simulated check)
fp16           iOS16   fp16 weights and compute, float32 I/O
int8           iOS16   + int8 weights, per-channel symmetric (constexpr_affine_dequantize)
pal6 / pal4    iOS16   + 6 / 4-bit k-means palettes, one per tensor (constexpr_lut_to_dense)
int8-block     iOS18   + int8 weights, one scale per block of 32 input channels
int4-block     iOS18   + int4 weights, per block of 32 (constexpr_blockwise_shift_scale)
=============  ======  ======================================================================

Weights with at most ``weight_threshold`` (default 2048, coremltools' default) elements stay fp16, and per-block
quantization skips layers whose input channels do not split into blocks; the record's notes give the
compressed share. The package is a directory; the base class hashes and renames it as a whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeprune.artifacts.coreml import CoreMLInfo, import_coremltools, inspect_mlpackage, quiet
from edgeprune.export.base import ArtifactRecord, Exporter, ExportRequest, register_exporter
from edgeprune.export.coreml_package import embed_coreml_metadata, stabilize_manifest
from edgeprune.schemas import TensorInfo

IOS18_PRECISIONS = frozenset({"int8-block", "int4-block"})
_BASE_CACHE: dict[str, Any] = {}  # converted (uncompressed) programs reused by the compressed variants


def _convert(req: ExportRequest, fp16: bool, target: str) -> Any:
    """The uncompressed ML program (cached: the compressed variants of one model share it)."""
    import numpy as np
    import torch

    ct, _ = import_coremltools()
    key = req.model_key(fp16, target)
    if key in _BASE_CACHE:
        return _BASE_CACHE[key]
    module, example = req.model, req.example_input[:1].float()
    if req.io_layout == "NHWC":
        from edgeprune.export.onnx_export import nhwc_input

        module, example = nhwc_input(module), example.permute(0, 2, 3, 1).contiguous()
    with torch.no_grad():
        program = torch.export.export(module, (example,)).run_decompositions({})
    with quiet():
        ml = ct.convert(
            program, convert_to="mlprogram", skip_model_load=True,
            inputs=[ct.TensorType(name="input", shape=tuple(example.shape), dtype=np.float32)],
            outputs=[ct.TensorType(name="logits", dtype=np.float32)],
            compute_precision=ct.precision.FLOAT16 if fp16 else ct.precision.FLOAT32,
            minimum_deployment_target=getattr(ct.target, target),
        )  # fmt: skip
    while len(_BASE_CACHE) >= 3:
        _BASE_CACHE.pop(next(iter(_BASE_CACHE)))
    _BASE_CACHE[key] = ml
    return ml


def _compress(ml: Any, precision: str, weight_threshold: int, block_size: int) -> Any:
    """Apply the post-training weight compression that ``precision`` names (fp32/fp16: none)."""
    _, cto = import_coremltools()
    if precision in ("fp32", "fp16"):
        return ml
    if precision.startswith("pal"):
        op = cto.OpPalettizerConfig(
            mode="kmeans",
            nbits=int(precision[3:]),
            granularity="per_tensor",
            weight_threshold=weight_threshold,
        )
        with quiet():
            return cto.palettize_weights(ml, cto.OptimizationConfig(global_config=op))
    dtype = precision.split("-")[0]  # int8 | int4
    extra = {"granularity": "per_block", "block_size": block_size} if precision.endswith("-block") else {}
    op = cto.OpLinearQuantizerConfig(
        mode="linear_symmetric",
        dtype=dtype,
        weight_threshold=weight_threshold,
        **({"granularity": "per_channel"} | extra),
    )
    with quiet():
        return cto.linear_quantize_weights(ml, cto.OptimizationConfig(global_config=op))


@register_exporter(primary=True)
class CoreMLExporter(Exporter):
    """PyTorch -> Core ML ML program (.mlpackage), fp32/fp16 or with int8/int4/palettized weights."""

    format = "coreml"
    backend = "coremltools"
    suffix = ".mlpackage"
    precisions = ("fp32", "fp16", "int8", "pal6", "pal4", "int8-block", "int4-block")
    requires = {"coremltools": "coreml", "sklearn": "coreml"}
    layouts = ("NCHW", "NHWC")
    expected = {
        "fp32": "none", "fp16": "fp16", "int8": "int8-weights", "pal6": "palettized-6bit",
        "pal4": "palettized-4bit", "int8-block": "int8-weights", "int4-block": "int4-weights",
    }  # fmt: skip
    backend_dist = "coremltools"

    def __init__(self, weight_threshold: int = 2048, block_size: int = 32) -> None:
        self.weight_threshold = int(weight_threshold)
        self.block_size = int(block_size)
        self._info: CoreMLInfo | None = None

    def export(self, req: ExportRequest) -> ArtifactRecord:
        """Validate first, then import coremltools our way (fast, quiet) before the base class checks it."""
        self.check(req)
        import_coremltools()
        return super().export(req)

    @staticmethod
    def deployment_target(precision: str) -> str:
        return "iOS18" if precision in IOS18_PRECISIONS else "iOS16"

    def _export(self, req: ExportRequest, tmp_path: Path) -> None:
        base = _convert(req, fp16=req.precision != "fp32", target=self.deployment_target(req.precision))
        model = _compress(base, req.precision, self.weight_threshold, self.block_size)
        with quiet():
            model.save(str(tmp_path))
        stabilize_manifest(tmp_path)  # reproducible package bytes and sha256

    def metadata_for(self, req: ExportRequest) -> dict[str, Any]:
        meta = super().metadata_for(req)
        meta["export"].update(
            deployment_target=self.deployment_target(req.precision),
            compute_precision="fp32" if req.precision == "fp32" else "fp16",
            weight_threshold=self.weight_threshold,
        )
        return meta

    def embed_metadata(self, path: Path, metadata: dict[str, Any]) -> None:
        embed_coreml_metadata(path, metadata)

    def describe(self, path: Path) -> tuple[str, list[TensorInfo], list[TensorInfo]]:
        """Structural read-back (op types, weight storage); Core ML itself can only load it on macOS."""
        self._info = inspect_mlpackage(path)
        return self._info.quantization, self._info.inputs, self._info.outputs

    def notes(
        self, req: ExportRequest, quantization: str, inputs: list[TensorInfo], outputs: list[TensorInfo]
    ) -> list[str]:
        notes = super().notes(req, quantization, inputs, outputs)
        info = self._info
        if info is None:
            return notes
        notes.append(
            f"minimum deployment target {info.deployment_target} (ML program, spec {info.spec_version})"
        )
        if req.precision not in ("fp32", "fp16"):
            kept = sum(1 for w in info.weights if not w.compression)
            grans = sorted({w.granularity for w in info.weights if w.compression})
            notes.append(
                f"{info.compressed_fraction:.0%} of conv/linear weight values compressed "
                f"({', '.join(grans) or 'none'}); "
                f"{kept} of {len(info.weights)} weight tensors stay {'fp16' if req.precision != 'fp32' else 'fp32'} "
                f"(<= {self.weight_threshold} values or not divisible into blocks)"
            )
        notes.append(
            "Core ML prediction runs only on macOS: elsewhere this artifact is verified structurally and by "
            "running its decompressed weights in a BN-folded PyTorch copy (fp16 activations not simulated)"
        )
        return notes
