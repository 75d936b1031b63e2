"""Runtime framework: a Session runs an exported artifact on normalised float32 NCHW batches.

Every runtime takes the same input (N,C,H,W float32) and returns float32 logits (N,K), whatever the
artifact's layout or I/O dtype, so verification and profiling code never special-cases a format.
"""

from __future__ import annotations

import importlib.metadata
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np

from edgeprune.artifacts.quant import QUANTIZED_DTYPES, dequantize, quantize
from edgeprune.errors import EdgepruneError
from edgeprune.optional import require
from edgeprune.registry import Registry
from edgeprune.schemas import TensorInfo

__all__ = ["QUANTIZED_DTYPES", "RUNTIMES", "Session", "dequantize", "format_for_path", "open_session", "quantize"]


class Session(ABC):
    """A loaded artifact. ``run`` maps normalised float32 NCHW (N,C,H,W) to float32 logits (N,K)."""

    format: ClassVar[str]
    formats: ClassVar[tuple[str, ...]] = ()  # every format this session runs (declared capability; default: format)
    suffixes: ClassVar[tuple[str, ...]]
    runtime: ClassVar[str]  # pip distribution of the runtime library, e.g. "ai-edge-litert"
    requires: ClassVar[dict[str, str]] = {}

    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    layout: str  # the artifact's input layout: "NCHW", "NHWC" or "" (decide from the shape)

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.formats and hasattr(cls, "format"):
            cls.formats = (cls.format,)

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        self.path = Path(path)
        self.threads = threads

    dynamic_batch: bool = False  # set when the loaded artifact accepts any batch size

    def run(self, x: np.ndarray) -> np.ndarray:
        """Logits for a batch of normalised float32 NCHW images (one image at a time for batch-1 artifacts)."""
        x = self.to_model_layout(self.check_batch(x), self.layout)
        n, model_batch = x.shape[0], int(self.inputs[0].shape[0])
        if self.dynamic_batch or n == model_batch:
            return self._invoke(x)
        if model_batch != 1:
            raise EdgepruneError(
                f"batch of {n} does not fit the model's fixed batch of {model_batch}", "pass batches of that size"
            )
        return np.concatenate([self._invoke(x[i : i + 1]) for i in range(n)], axis=0)

    @abstractmethod
    def _invoke(self, x: np.ndarray) -> np.ndarray:
        """Logits for a batch already in the artifact's layout and batch size."""

    @classmethod
    def runtime_id(cls) -> str:
        """e.g. 'ai-edge-litert 2.3.0' (for Measurement.runtime)."""
        try:
            return f"{cls.runtime} {importlib.metadata.version(cls.runtime)}"
        except importlib.metadata.PackageNotFoundError:
            return cls.runtime

    @staticmethod
    def check_batch(x: np.ndarray) -> np.ndarray:
        """Validate a (N,C,H,W) batch and return it as contiguous float32."""
        x = np.asarray(x)
        if x.ndim != 4:
            raise EdgepruneError(
                f"expected a (N,C,H,W) batch, got shape {x.shape}", "add a batch axis or fix the layout"
            )
        if not np.issubdtype(x.dtype, np.floating):
            raise EdgepruneError(
                f"expected normalised float32 input, got {x.dtype}", "apply the preprocessing contract first"
            )
        return np.ascontiguousarray(x, dtype=np.float32)

    def to_model_layout(self, x: np.ndarray, layout: str) -> np.ndarray:
        """NCHW batch -> the artifact's input layout, checking the per-image shape matches."""
        model_shape = tuple(self.inputs[0].shape[1:])
        if layout not in ("NCHW", "NHWC", ""):
            raise EdgepruneError(f"unknown input layout '{layout}'", "use NCHW or NHWC")
        nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        if layout == "NHWC" or (not layout and tuple(x.shape[1:]) != model_shape):
            x = nhwc
        if tuple(x.shape[1:]) != model_shape:
            raise EdgepruneError(
                f"input images of shape {tuple(x.shape[1:])} do not fit the model input {list(self.inputs[0].shape)}",
                "preprocess to the model's input size and channel count",
            )
        return x


RUNTIMES: Registry[type[Session]] = Registry("runtime")


def format_for_path(path: str | Path) -> str:
    """The registered format whose runtime handles this file suffix."""
    suffix = Path(path).suffix.lower()
    for name, cls in RUNTIMES.items():
        if suffix in cls.suffixes:
            return name
    known = sorted({s for _, cls in RUNTIMES.items() for s in cls.suffixes})
    raise EdgepruneError(
        f"no runtime for '{Path(path).name}'", f"pass fmt= or use one of: {', '.join(known)}"
    )


def open_session(path: str | Path, fmt: str | None = None, threads: int = 1) -> Session:
    """Load an artifact in the runtime registered for its format (inferred from the suffix if not given)."""
    path = Path(path)
    if not path.exists():
        raise EdgepruneError(f"model file not found: {path}", "check the path or re-run the export stage")
    if int(threads) < 1:
        raise EdgepruneError(f"threads must be >= 1, got {threads}", "pass threads=1 or more")
    cls = RUNTIMES.get(fmt or format_for_path(path))
    for module, extra in cls.requires.items():
        require(module, extra)
    return cls(path, threads=int(threads))
