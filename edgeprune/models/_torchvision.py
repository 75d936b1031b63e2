"""Import torchvision on the CPU build of torch.

PyPI's torchvision 0.28.0 is a CUDA build: its C++ extension fails to load here, and then its fake-op
registrations fail on ops that were never declared (``torchvision::nms``). Declaring the two op schemas
before the import lets the pure-Python parts (models, transforms) load; the C++ ops stay unavailable.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import torch

_LIB: Any = None  # the op-library fragment must stay alive for the schemas to stay defined


def _declare_ops() -> None:
    global _LIB
    if _LIB is not None:
        return
    lib = torch.library.Library("torchvision", "FRAGMENT")
    for schema in ("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
                   "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"):
        try:
            lib.define(schema)
        except RuntimeError:  # already declared (a real extension loaded, or another shim ran first)
            pass
    _LIB = lib


def torchvision_models() -> ModuleType:
    """``torchvision.models``, importable on CPU torch; raises ImportError/RuntimeError if it still fails."""
    _declare_ops()
    import torchvision.models

    return torchvision.models
