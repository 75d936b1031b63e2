"""onnxruntime (CPUExecutionProvider) for .onnx artifacts, with an explicit intra-op thread count."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeprune.errors import EdgepruneError
from edgeprune.runtimes.base import RUNTIMES, Session

_NP_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


@RUNTIMES.register("onnx")
class OnnxRuntimeSession(Session):
    """A .onnx model in ``onnxruntime.InferenceSession``; NCHW or NHWC input, fixed or dynamic batch."""

    format = "onnx"
    suffixes = (".onnx",)
    runtime = "onnxruntime"
    requires = {"onnxruntime": "onnx", "onnx": "onnx"}

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        super().__init__(path, threads)
        import onnxruntime as ort

        from edgeprune.artifacts.onnx import inspect_onnx

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # errors only
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
            self.quantization, self.inputs, self.outputs, self.facts = inspect_onnx(self.path)
        except Exception as exc:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
            msg = (str(exc).strip().splitlines() or [""])[0][:300]
            raise EdgepruneError(
                f"onnxruntime cannot load {self.path.name}: {type(exc).__name__}: {msg}",
                "re-export the model",
            ) from exc
        feeds = self.session.get_inputs()
        if len(feeds) != 1:
            raise EdgepruneError(
                f"{self.path.name} has {len(feeds)} inputs", "export a single-image-input model"
            )
        self._in_name = feeds[0].name
        self._in_dtype = _NP_DTYPES.get(feeds[0].type, np.float32)
        self.layout = self.inputs[0].layout
        self.dynamic_batch = int(self.inputs[0].shape[0]) == -1

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {self._in_name: x.astype(self._in_dtype, copy=False)})[0]
        return np.asarray(out, dtype=np.float32)
