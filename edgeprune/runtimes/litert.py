"""LiteRT (ai-edge-litert) runtime for .tflite artifacts, with an explicit thread count (XNNPACK on CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeprune.artifacts.tflite import inspect_tflite
from edgeprune.errors import EdgepruneError
from edgeprune.runtimes.base import QUANTIZED_DTYPES, RUNTIMES, Session, dequantize, quantize


@RUNTIMES.register("tflite")
class LiteRTSession(Session):
    """A .tflite model in ``ai_edge_litert.interpreter.Interpreter``; handles NHWC and quantized I/O."""

    format = "tflite"
    suffixes = (".tflite",)
    runtime = "ai-edge-litert"
    requires = {"ai_edge_litert": "tflite"}

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        super().__init__(path, threads)
        from ai_edge_litert.interpreter import Interpreter

        try:
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=threads)
            self.interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as exc:
            raise EdgepruneError(
                f"LiteRT cannot load {self.path.name}: {exc}", "re-export the model"
            ) from exc
        self.info = inspect_tflite(self.path)
        self.inputs, self.outputs = self.info.inputs, self.info.outputs
        in_details = self.interpreter.get_input_details()
        if len(in_details) != 1:
            raise EdgepruneError(
                f"{self.path.name} has {len(in_details)} inputs", "export a single-image-input model"
            )
        self._in = in_details[0]
        self._outs = self.interpreter.get_output_details()
        self.layout = self.inputs[0].layout

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        """One invoke on a batch already in the model's layout (float32); returns float32 first output."""
        info = self.inputs[0]
        feed = (
            quantize(x, info) if info.dtype in QUANTIZED_DTYPES else x.astype(self._in["dtype"], copy=False)
        )
        self.interpreter.set_tensor(self._in["index"], feed)
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self._outs[0]["index"])
        return (
            dequantize(out, self.outputs[0])
            if self.outputs[0].dtype in QUANTIZED_DTYPES
            else out.astype(np.float32)
        )
