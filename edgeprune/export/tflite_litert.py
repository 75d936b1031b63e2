"""TFLite through litert-torch (torch.export -> .tflite), the primary TFLite backend.

* fp32: ``litert_torch.convert``
* fp16 / dynamic-int8: AI Edge Quantizer recipes applied to the fp32 flatbuffer (FLOAT_CASTING, dynamic_wi8_afp32)
* int8: PT2E static quantization (symmetric, per-channel) calibrated on ``calib_inputs``, then converted;
  litert-torch gives int8 input and output tensors, recorded in the artifact's TensorInfo. The quantizer
  annotates every op (concatenations share one scale across their inputs and output) and batch norms no conv
  precedes become depthwise convs, so the whole graph is integer (:mod:`edgeprune.export.pt2e_int8`). ``io_dtype``
  float32 / uint8 adds QUANTIZE / DEQUANTIZE ops at the graph edges (``set_tflite_io_dtype``).
* NHWC I/O: the model is wrapped with ``litert_torch.to_channel_last_io`` before conversion.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edgeprune.artifacts.tflite import inspect_tflite
from edgeprune.errors import EdgepruneError
from edgeprune.export.base import Exporter, ExportFailedError, ExportRequest, register_exporter
from edgeprune.export.tflite_metadata import embed_tflite_metadata
from edgeprune.schemas import TensorInfo


@contextmanager
def _quiet_converter() -> Iterator[None]:
    """Hide litert-torch's progress tree unless the user asked for it via the environment."""
    key = "LITERT_TORCH_SHOW_PROGRESS"
    if key in os.environ:
        yield
        return
    os.environ[key] = "n"
    try:
        yield
    finally:
        os.environ.pop(key, None)


def _layout_wrap(req: ExportRequest) -> tuple[Any, Any, Any]:
    """(module, example, calibration) in the layout the artifact's input should have."""
    import litert_torch
    import torch

    example = req.example_input[:1].float()
    calib = torch.as_tensor(req.calib_inputs).float() if req.calib_inputs is not None else None
    if req.io_layout == "NCHW":
        return req.model, example, calib
    nhwc = (0, 2, 3, 1)
    wrapped = litert_torch.to_channel_last_io(req.model, args=[0]).eval()
    return (
        wrapped,
        example.permute(nhwc).contiguous(),
        None if calib is None else calib.permute(nhwc).contiguous(),
    )


_FLOAT_CACHE: dict[str, bytes] = {}  # fp32 flatbuffers reused by the fp16 / dynamic-int8 exports of one model


def _convert_float(module: Any, example: Any, key: str | None = None) -> bytes:
    """fp32 flatbuffer; cached by ``key`` (at most two models kept) so quantized variants skip reconversion."""
    import litert_torch
    import torch

    if key is not None and key in _FLOAT_CACHE:
        return _FLOAT_CACHE[key]
    with torch.no_grad():
        data = litert_torch.convert(module, (example,)).model_content()
    if key is not None:
        while len(_FLOAT_CACHE) >= 2:
            _FLOAT_CACHE.pop(next(iter(_FLOAT_CACHE)))
        _FLOAT_CACHE[key] = data
    return data


_CALIB_CHUNK = 32


def _export_for_calibration(module: Any, example: Any, calib: Any) -> tuple[Any, int]:
    """torch.export the float module, with a dynamic batch axis when the model allows it.

    Histogram observers cost about the same per call whatever the batch, so calibrating in chunks instead of
    one image at a time is many times faster. Models that hard-code batch 1 or mix images across the batch
    fall back to a static export (checked: a batch of 2 must equal two single-image runs).
    """
    import torch

    if len(calib) >= 2:
        try:
            batch = torch.export.Dim("batch", min=1, max=max(2, len(calib)))
            graph = torch.export.export(module, (calib[:2],), dynamic_shapes=({0: batch},)).module()
            with torch.no_grad():
                pair = graph(calib[:2])
                single = torch.cat([module(calib[i : i + 1]) for i in range(2)])
            if pair.shape == single.shape and torch.allclose(pair, single, rtol=1e-4, atol=1e-4):
                return graph, _CALIB_CHUNK
        except Exception:  # noqa: BLE001 - any export / shape error means "calibrate one image at a time"
            pass
    return torch.export.export(module, (example,)).module(), 1


# Empirical bias correction after calibration (export/bias_correction.py), in rounds; 0 = off, the default:
# it helped ImageNet-weight EfficientNet-Lite0/2 (logits cosine 0.967 -> 0.982, 0.914 -> 0.924) but made briefly
# fine-tuned 2-class zoo models slightly worse on held-out images (benchmarks/results/zoo_int8.md).
BIAS_CORRECTION_ROUNDS = 0


def _convert_int8(module: Any, example: Any, calib: Any, quantizer: Any = None) -> bytes:
    """PT2E static int8: prepare, calibrate on ``calib``, convert (weights kept unfolded), optionally correct each
    layer's mean output shift on ``calib`` (empirical bias correction, ``BIAS_CORRECTION_ROUNDS``), then lower.

    ``quantizer`` defaults to per-channel symmetric int8 everywhere with every op annotated
    (:func:`edgeprune.export.pt2e_int8.int8_quantizer`; the repair ladder passes one that keeps chosen modules in
    float). Batch norms no convolution precedes become depthwise convs first, so the file stays fully integer.
    """
    import litert_torch
    import torch
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from edgeprune.export.pt2e_int8 import batchnorm_to_depthwise, int8_quantizer

    if quantizer is None:
        quantizer = int8_quantizer()
    graph, chunk = _export_for_calibration(module, example, calib)
    batchnorm_to_depthwise(graph)
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for i in range(0, len(calib), chunk):
            prepared(calib[i : i + chunk])
    quantized = move_exported_model_to_eval(convert_pt2e(prepared, fold_quantize=False))
    # exported graphs refuse .eval(); clearing the flag only silences litert-torch's "training mode" warning
    for sub in quantized.modules():
        sub.training = False
    if BIAS_CORRECTION_ROUNDS:
        from edgeprune.export.bias_correction import correct_biases

        correct_biases(quantized, calib, chunk, rounds=BIAS_CORRECTION_ROUNDS)
    return litert_torch.convert(
        quantized, (example,), quant_config=QuantConfig(pt2e_quantizer=quantizer)
    ).model_content()


def _aeq(float_model: bytes, precision: str) -> bytes:
    """Post-training weight quantization of a float flatbuffer with AI Edge Quantizer."""
    from ai_edge_quantizer import qtyping, recipe
    from ai_edge_quantizer import quantizer as aeq

    if precision == "dynamic-int8":
        q = aeq.Quantizer(float_model, recipe.dynamic_wi8_afp32())
    else:
        q = aeq.Quantizer(float_model)
        fp16 = qtyping.TensorQuantizationConfig(num_bits=16, dtype=qtyping.TensorDataType.FLOAT)
        q.update_quantization_recipe(
            regex=".*", operation_name="*", algorithm_key=aeq.AlgorithmName.FLOAT_CASTING,
            op_config=qtyping.OpQuantizationConfig(
                weight_tensor_config=fp16, compute_precision=qtyping.ComputePrecision.FLOAT, explicit_dequantize=True
            ),
        )  # fmt: skip
    result = q.quantize(enable_progress_bar=False, enable_progress_report=False).quantized_model
    if not result:
        raise RuntimeError("AI Edge Quantizer returned no model")
    return bytes(result)


# -- I/O dtype of full-integer models ---------------------------------------------------------------------
def set_tflite_io_dtype(data: bytes, io_dtype: str) -> bytes:
    """Turn the int8 inputs/outputs of a full-integer model into float32 or uint8 ones.

    The integer graph is left as it is: a QUANTIZE op is put in front of each int8 input and a DEQUANTIZE
    (float32) or QUANTIZE (uint8, same scale, zero point + 128) op after each int8 output, which is the form
    TFLiteConverter emits for ``inference_input_type=float32/uint8``. Non-int8 I/O tensors are kept.
    """
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    if io_dtype == "int8":
        return data
    if io_dtype not in ("float32", "uint8"):
        raise EdgepruneError(f"cannot rewrite model I/O to '{io_dtype}'", "use float32, int8 or uint8")
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    graph = model.subgraphs[0]
    op = schema.BuiltinOperator

    def opcode(code: int) -> int:
        for i, c in enumerate(model.operatorCodes):
            if max(c.builtinCode, c.deprecatedBuiltinCode) == code:
                return i
        new = schema.OperatorCodeT()
        new.builtinCode, new.deprecatedBuiltinCode, new.version = code, min(code, 127), 2
        model.operatorCodes.append(new)
        return len(model.operatorCodes) - 1

    def edge_tensor(old: int) -> int:
        src = graph.tensors[old]
        new = schema.TensorT()
        new.shape, new.name, new.buffer = list(src.shape), src.name, 0
        new.shapeSignature = None if src.shapeSignature is None else list(src.shapeSignature)
        if io_dtype == "uint8":
            new.type = schema.TensorType.UINT8
            new.quantization = schema.QuantizationParametersT()
            new.quantization.scale = list(src.quantization.scale)
            new.quantization.zeroPoint = [int(z) + 128 for z in src.quantization.zeroPoint]
        else:
            new.type = schema.TensorType.FLOAT32
        src.name = (src.name or b"") + (b"_int8" if isinstance(src.name, bytes) else "_int8")
        graph.tensors.append(new)
        return len(graph.tensors) - 1

    def is_int8(t: int) -> bool:
        q = graph.tensors[t].quantization
        return graph.tensors[t].type == schema.TensorType.INT8 and q is not None and q.scale is not None

    remap: dict[int, int] = {}
    head, tail = [], []
    for t in list(graph.inputs):
        if is_int8(t):
            remap[t] = edge_tensor(t)
            head.append(_operator(schema, opcode(op.QUANTIZE), remap[t], t))
    out_code = opcode(op.QUANTIZE if io_dtype == "uint8" else op.DEQUANTIZE)
    for t in list(graph.outputs):
        if is_int8(t):
            remap[t] = edge_tensor(t)
            tail.append(_operator(schema, out_code, t, remap[t]))
    if not remap:
        return data
    graph.operators = head + list(graph.operators) + tail
    graph.inputs = [remap.get(int(t), int(t)) for t in graph.inputs]
    graph.outputs = [remap.get(int(t), int(t)) for t in graph.outputs]
    for sig in model.signatureDefs or []:
        for entry in list(sig.inputs or []) + list(sig.outputs or []):
            entry.tensorIndex = remap.get(entry.tensorIndex, entry.tensorIndex)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _operator(schema: Any, opcode_index: int, src: int, dst: int) -> Any:
    new = schema.OperatorT()
    new.opcodeIndex, new.inputs, new.outputs = opcode_index, [src], [dst]
    return new


def io_metadata(path: Path, layout: str = "") -> dict[str, Any]:
    """The I/O actually present in a .tflite file (dtype, shape, quantization) plus the image input layout."""
    info = inspect_tflite(path)
    inputs = [t.model_copy(update={"layout": layout}) if layout and len(t.shape) == 4 else t for t in info.inputs]
    return {
        "inputs": [t.model_dump(exclude_none=True) for t in inputs],
        "outputs": [t.model_dump(exclude_none=True) for t in info.outputs],
    }


@register_exporter(primary=True)
class LiteRTTorchExporter(Exporter):
    """PyTorch -> .tflite with litert-torch; quantization by AEQ (fp16, dynamic) or PT2E (int8)."""

    format = "tflite"
    backend = "litert-torch"
    suffix = ".tflite"
    precisions = ("fp32", "fp16", "dynamic-int8", "int8")
    requires = {"litert_torch": "tflite", "ai_edge_quantizer": "tflite", "ai_edge_litert": "tflite"}
    layouts = ("NCHW", "NHWC")
    needs_calibration = frozenset({"int8"})
    expected = {"fp32": "none", "fp16": "fp16-weights", "dynamic-int8": "dynamic-int8", "int8": "full-int8"}
    backend_dist = "litert-torch"
    io_dtype_options = {"int8": ("int8", "float32", "uint8")}  # first = default (PT2E's native int8 I/O)

    def metadata_for(self, req: ExportRequest) -> dict[str, Any]:
        meta = super().metadata_for(req)
        meta["export"]["io_dtype"] = self.resolve_io_dtype(req)
        return meta

    def _export(self, req: ExportRequest, tmp_path: Path) -> None:
        module, example, calib = _layout_wrap(req)
        with _quiet_converter():
            if req.precision == "int8":
                data = set_tflite_io_dtype(_convert_int8(module, example, calib), self.resolve_io_dtype(req))
            else:
                data = _convert_float(module, example, req.model_key())
                if req.precision in ("fp16", "dynamic-int8"):
                    data = _aeq(data, req.precision)
        tmp_path.write_bytes(data)

    def embed_metadata(self, path: Path, metadata: dict[str, Any]) -> None:
        export = dict(metadata.get("export", {}))
        export["io"] = io_metadata(path, str(export.get("io_layout", "")))  # read back from the file
        embed_tflite_metadata(path, {**metadata, "export": export})

    def describe(self, path: Path) -> tuple[str, list[TensorInfo], list[TensorInfo]]:
        """Inspect the flatbuffer and make sure LiteRT can load and allocate it."""
        from ai_edge_litert.interpreter import Interpreter

        info = inspect_tflite(path)
        try:
            Interpreter(model_path=str(path), num_threads=1).allocate_tensors()
        except (RuntimeError, ValueError) as exc:
            raise ExportFailedError(
                f"LiteRT cannot load the exported file: {exc}", "report this converter bug"
            ) from exc
        return info.quantization, info.inputs, info.outputs
