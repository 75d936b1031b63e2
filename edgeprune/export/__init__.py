"""Export targets. Each format/backend lives in one module that registers itself in EXPORTERS."""

from edgeprune.export.base import (
    EXPORTERS,
    ArtifactRecord,
    Exporter,
    ExportFailedError,
    ExportRequest,
    export_targets,
    get_exporter,
    register_exporter,
)

# isort: off
# Registry lines: importing a module registers its exporter (heavy converters are imported lazily inside).
from edgeprune.export import tflite_litert  # noqa: F401  -> "tflite", "tflite:litert-torch"
from edgeprune.export import tflite_onnx2tf  # noqa: F401  -> "tflite:onnx2tf" (extra [tf])
from edgeprune.export import onnx_export  # noqa: F401  -> "onnx", "onnx:torch-onnx"
from edgeprune.export import coreml_export  # noqa: F401  -> "coreml", "coreml:coremltools"
# isort: on

__all__ = [
    "EXPORTERS",
    "ArtifactRecord",
    "ExportFailedError",
    "ExportRequest",
    "Exporter",
    "export_targets",
    "get_exporter",
    "register_exporter",
]
