"""Two more litert-torch TFLite exporters, used by the int8 repair ladder (not registered as targets).

* :class:`PT2EFloatLayersExporter` - PT2E int8 with chosen torch modules left in float
* :class:`AEQInt16Exporter` - int16 activations / int8 weights with AI Edge Quantizer (no TensorFlow needed)
* :class:`QATExporter` - the current state of a quantization-aware training session, lowered to full int8
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeprune.export.base import ExportRequest
from edgeprune.export.tflite_litert import (
    LiteRTTorchExporter,
    _convert_float,
    _convert_int8,
    _layout_wrap,
    _quiet_converter,
    set_tflite_io_dtype,
)


class PT2EFloatLayersExporter(LiteRTTorchExporter):
    """litert-torch PT2E int8 with some modules left unquantized (quantizer config None for their names)."""

    def __init__(self, float_modules: tuple[str, ...]) -> None:
        self.float_modules = tuple(float_modules)

    def metadata_for(self, req: ExportRequest) -> dict[str, Any]:
        meta = super().metadata_for(req)
        meta["export"]["float_modules"] = list(self.float_modules)
        return meta

    def _export(self, req: ExportRequest, tmp_path: Path) -> None:
        from edgeprune.export.pt2e_int8 import int8_quantizer

        module, example, calib = _layout_wrap(req)
        quantizer = int8_quantizer(_outside_modules(self.float_modules))
        with _quiet_converter():
            data = _convert_int8(module, example, calib, quantizer)
        tmp_path.write_bytes(set_tflite_io_dtype(data, self.resolve_io_dtype(req)))


def _outside_modules(skip: tuple[str, ...]) -> Any:
    """A node filter that is False for every node created inside the modules named ``skip`` (left in float).

    ``set_module_name(name, None)`` would say the same, but litert-torch 0.10 refuses a None config and its
    name filter expects the older ``L__self___`` key spelling of ``nn_module_stack``, so the filter here reads
    the fully qualified module names stored as the stack's values instead.
    """
    wanted = set(skip)

    def outside(node: Any) -> bool:
        stack = node.meta.get("nn_module_stack", {}) or {}
        names = {str(v[0]).removeprefix("L['self'].") for v in stack.values()}
        return not any(n == w or n.endswith("." + w) for n in names for w in wanted)  # also under a wrapper

    return outside


class AEQInt16Exporter(LiteRTTorchExporter):
    """int16 activations / int8 weights with AI Edge Quantizer on the litert-torch fp32 model (no TF needed)."""

    precisions = ("int16x8",)
    needs_calibration = frozenset({"int16x8"})
    expected = {"int16x8": "int16x8"}
    io_dtype_options = {"int16x8": ("int16",)}  # AEQ keeps int16 inputs and outputs

    def _export(self, req: ExportRequest, tmp_path: Path) -> None:
        from ai_edge_quantizer import quantizer as aeq
        from ai_edge_quantizer import recipe

        module, example, calib = _layout_wrap(req)
        with _quiet_converter():
            float_model = _convert_float(module, example, req.model_key())
        q = aeq.Quantizer(float_model, recipe.static_wi8_ai16())
        name = _signature_input(float_model)
        stats = q.calibrate(
            {"serving_default": [{name: calib[i : i + 1].numpy()} for i in range(len(calib))]}
        )
        result = q.quantize(stats, enable_progress_bar=False, enable_progress_report=False).quantized_model
        tmp_path.write_bytes(bytes(result))


def _signature_input(model: bytes) -> str:
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=model).get_signature_runner()
    return next(iter(runner.get_input_details()))


class QATExporter(LiteRTTorchExporter):
    """Full int8 from a :class:`edgeprune.export.qat.QATSession` (its fake-quantized weights and ranges)."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def metadata_for(self, req: ExportRequest) -> dict[str, Any]:
        meta = super().metadata_for(req)
        meta["export"]["qat_epochs"] = self.session.epochs
        return meta

    def _export(self, req: ExportRequest, tmp_path: Path) -> None:
        with _quiet_converter():
            data = self.session.lowered(req.example_input, req.io_layout)
        tmp_path.write_bytes(set_tflite_io_dtype(data, self.resolve_io_dtype(req)))
