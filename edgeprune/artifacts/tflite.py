"""Read a .tflite file's structure: I/O tensors, op histogram and the quantization mode actually present.

The mode is classified from what the compute ops (conv / fully-connected ...) really consume, never from
what was requested:

* ``full-int8``    every compute op takes int8/uint8 activations (int8 weights, int32 bias)
* ``int16x8``      int16 activations with int8 weights
* ``partial-int8`` some compute ops on int8 activations, others on float
* ``dynamic-int8`` int8 weights fed straight to compute ops whose activations stay float (dynamic range)
* ``weight-only-int8`` int8 weights expanded to float by DEQUANTIZE ops
* ``fp16-weights`` float16 weight tensors expanded by DEQUANTIZE, float32 compute
* ``fp16``         float16 activations
* ``none``         plain float32
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeprune.artifacts.layout import declared_layout, image_layout
from edgeprune.schemas import TensorInfo

COMPUTE_OPS = frozenset(
    {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "CONV_3D", "BATCH_MATMUL"}
)
_INT_ACT = {"int8", "uint8"}
_DTYPES = {"FLOAT32": "float32", "FLOAT16": "float16", "INT8": "int8", "UINT8": "uint8", "INT16": "int16",
           "INT32": "int32", "INT64": "int64", "INT4": "int4", "BOOL": "bool"}  # fmt: skip


@dataclass
class TfliteInfo:
    """What a .tflite file contains, read from its flatbuffer."""

    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    quantization: str
    op_histogram: dict[str, int]
    activation_dtypes: list[str] = field(default_factory=list)
    weight_dtypes: list[str] = field(default_factory=list)
    metadata_names: list[str] = field(default_factory=list)
    edgeprune_metadata: dict[str, Any] | None = None

    @property
    def n_transpose(self) -> int:
        return self.op_histogram.get("TRANSPOSE", 0)

    @property
    def n_quantize(self) -> int:
        return self.op_histogram.get("QUANTIZE", 0)

    @property
    def n_dequantize(self) -> int:
        return self.op_histogram.get("DEQUANTIZE", 0)


def _names(cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


def _classify(act: set[str], direct_w: set[str], dequant_w: set[str]) -> str:
    if not act:
        return "none"
    int_act = act & (_INT_ACT | {"int16"})
    if int_act and int_act == act:
        return "int16x8" if "int16" in act else "full-int8"
    if int_act:
        return "partial-int8"
    if "float16" in act:
        return "fp16"
    if direct_w & {"int8", "int4", "uint8"}:
        return "dynamic-int4" if direct_w == {"int4"} else "dynamic-int8"
    if dequant_w & {"int8", "int4", "uint8"}:
        return "weight-only-int8"
    if "float16" in dequant_w:
        return "fp16-weights"
    return "none"


def inspect_tflite_bytes(data: bytes) -> TfliteInfo:
    """Inspect a serialized .tflite model (see module docstring for the quantization classes)."""
    from ai_edge_litert import schema_py_generated as schema

    # the metadata codec lives with the exporter that writes it; imported here, at call time, to keep the
    # import graph free of a cycle (artifacts is below export)
    from edgeprune.artifacts.tflite_metadata import read_tflite_metadata_bytes

    model = schema.Model.GetRootAs(data, 0)
    ops, types = _names(schema.BuiltinOperator), _names(schema.TensorType)
    graph = model.Subgraphs(0)

    def dtype(t: int) -> str:
        name = types.get(graph.Tensors(t).Type(), "UNKNOWN")
        return _DTYPES.get(name, name.lower())

    def is_const(t: int) -> bool:
        buf = model.Buffers(graph.Tensors(t).Buffer())
        return bool(buf is not None and (buf.DataLength() or buf.Size()))

    producer: dict[int, tuple[str, list[int]]] = {}
    op_list: list[tuple[str, list[int]]] = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = ops.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
        if name == "CUSTOM" and code.CustomCode():
            name = f"CUSTOM:{code.CustomCode().decode()}"
        ins = [int(t) for t in op.InputsAsNumpy()] if op.InputsLength() else []
        for t in op.OutputsAsNumpy() if op.OutputsLength() else []:
            producer[int(t)] = (name, ins)
        op_list.append((name, ins))

    act: set[str] = set()
    direct_w: set[str] = set()
    dequant_w: set[str] = set()
    for name, ins in op_list:
        if name not in COMPUTE_OPS or len(ins) < 2:
            continue
        if ins[0] >= 0 and not is_const(ins[0]):
            act.add(dtype(ins[0]))
        w = ins[1]
        if w < 0:
            continue
        src = producer.get(w)
        if src and src[0] == "DEQUANTIZE" and src[1] and is_const(src[1][0]):
            dequant_w.add(dtype(src[1][0]))
        elif is_const(w):
            direct_w.add(dtype(w))

    metadata_names = [(model.Metadata(i).Name() or b"").decode() for i in range(model.MetadataLength())]
    meta = read_tflite_metadata_bytes(data)
    layout = declared_layout(meta)

    def tensor_info(t: int, image: bool) -> TensorInfo:
        tensor = graph.Tensors(t)
        shape_np = tensor.ShapeAsNumpy()
        shape = [int(s) for s in shape_np] if not isinstance(shape_np, int) else []
        q = tensor.Quantization()
        scale = zero = None
        if q is not None and q.ScaleLength() == 1:
            scale = float(q.ScaleAsNumpy()[0])
            zero = int(q.ZeroPointAsNumpy()[0]) if q.ZeroPointLength() else 0
        lay = image_layout(shape, layout) if image else ""
        return TensorInfo(name=(tensor.Name() or b"").decode(), shape=shape, dtype=dtype(t), layout=lay,
                          quant_scale=scale, quant_zero_point=zero)  # fmt: skip

    return TfliteInfo(
        inputs=[tensor_info(int(t), True) for t in graph.InputsAsNumpy()],
        outputs=[tensor_info(int(t), False) for t in graph.OutputsAsNumpy()],
        quantization=_classify(act, direct_w, dequant_w),
        op_histogram=dict(Counter(name for name, _ in op_list)),
        activation_dtypes=sorted(act),
        weight_dtypes=sorted(direct_w | dequant_w),
        metadata_names=metadata_names,
        edgeprune_metadata=meta,
    )


def inspect_tflite(path: str | Path) -> TfliteInfo:
    """Inspect a .tflite file: I/O tensors, quantization mode, op histogram, embedded metadata."""
    return inspect_tflite_bytes(Path(path).read_bytes())
