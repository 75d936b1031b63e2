"""Host runtimes that execute exported artifacts. Each runtime module registers itself in RUNTIMES."""

from edgeprune.runtimes.base import RUNTIMES, Session, dequantize, format_for_path, open_session, quantize

# isort: off
# Registry lines: importing a module registers its runtime (the runtime library is imported lazily).
from edgeprune.runtimes import litert  # noqa: F401  -> "tflite"
from edgeprune.runtimes import onnxruntime  # noqa: F401  -> "onnx"
from edgeprune.runtimes import coreml  # noqa: F401  -> "coreml"
# isort: on

__all__ = ["RUNTIMES", "Session", "dequantize", "format_for_path", "open_session", "quantize"]
