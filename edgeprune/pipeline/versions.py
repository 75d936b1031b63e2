"""Tool versions recorded in every manifest and folded into stage cache keys."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

TRACKED = ["edgeprune", "torch", "torch-pruning", "litert-torch", "ai-edge-litert", "ai-edge-quantizer", "numpy",
           "onnx", "onnxruntime", "coremltools", "tensorflow-cpu", "onnx2tf"]


def tool_versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in TRACKED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out
