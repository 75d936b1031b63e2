"""What a model file is, read from the file itself: format, I/O tensors and their layout, quantization, metadata.

This package sits below both :mod:`edgeprune.export` (which writes files) and :mod:`edgeprune.runtimes`
(which runs them); they share it and never import each other. Format libraries are imported only when a
file of that format is read.

* :mod:`edgeprune.artifacts.layout` - the one NCHW / NHWC rule of every reader
* :mod:`edgeprune.artifacts.files` - size and sha256 of a file or a package directory
* :mod:`edgeprune.artifacts.tflite`, :mod:`.onnx`, :mod:`.coreml` - one reader per format
"""

from __future__ import annotations

from pathlib import Path

from edgeprune.artifacts.files import artifact_digest, artifact_size
from edgeprune.artifacts.layout import LAYOUTS, image_layout
from edgeprune.errors import EdgepruneError
from edgeprune.schemas import TensorInfo

SUFFIXES = {"tflite": ".tflite", "onnx": ".onnx", "coreml": ".mlpackage"}


def describe_artifact(path: Path, fmt: str) -> tuple[str, list[TensorInfo], list[TensorInfo]]:
    """(quantization, inputs, outputs) of the file at ``path`` in format ``fmt`` (tflite | onnx | coreml)."""
    path = Path(path)
    if fmt == "tflite":
        from edgeprune.artifacts.tflite import inspect_tflite

        info = inspect_tflite(path)
        return info.quantization, info.inputs, info.outputs
    if fmt == "onnx":
        from edgeprune.artifacts.onnx import inspect_onnx

        quantization, inputs, outputs, _ = inspect_onnx(path)
        return quantization, inputs, outputs
    if fmt == "coreml":
        from edgeprune.artifacts.coreml import inspect_mlpackage

        cm = inspect_mlpackage(path)
        return cm.quantization, cm.inputs, cm.outputs
    raise EdgepruneError(f"cannot read '{fmt}' files", f"use one of: {', '.join(SUFFIXES)}")


__all__ = ["LAYOUTS", "SUFFIXES", "artifact_digest", "artifact_size", "describe_artifact", "image_layout"]
