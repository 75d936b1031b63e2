"""Read a ``.onnx`` file back: I/O tensors, the quantization its weights show, op histogram, embedded metadata.

edgeprune stores its metadata as JSON in ``metadata_props`` under the key ``"edgeprune"``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from edgeprune.artifacts.layout import declared_layout, image_layout
from edgeprune.schemas import TensorInfo

METADATA_KEY = "edgeprune"


def opset_of(proto: Any) -> int:
    """The default-domain opset version a loaded ModelProto imports (0 if none)."""
    return int(next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0))


def _metadata(proto: Any) -> dict[str, Any] | None:
    for prop in proto.metadata_props:
        if prop.key == METADATA_KEY:
            return json.loads(prop.value)
    return None


def _tensor_info(value: Any, image: bool, declared: str) -> TensorInfo:
    import onnx

    t = value.type.tensor_type
    shape = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
    dtype = str(onnx.helper.tensor_dtype_to_np_dtype(t.elem_type))
    return TensorInfo(name=value.name, shape=shape, dtype=dtype, layout=image_layout(shape, declared) if image else "")


def inspect_onnx(path: Path) -> tuple[str, list[TensorInfo], list[TensorInfo], dict[str, Any]]:
    """(quantization, inputs, outputs, facts) read from the file: weight dtypes, op histogram, opset."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    graph = proto.graph
    weights = {t.name: str(onnx.helper.tensor_dtype_to_np_dtype(t.data_type)) for t in graph.initializer}
    ops = Counter(n.op_type for n in graph.node)
    float_weights = {d for d in weights.values() if d.startswith("float")}
    if ops.get("QuantizeLinear") or ops.get("DequantizeLinear") or ops.get("QLinearConv"):
        quantization = "int8"
    elif float_weights == {"float16"}:
        quantization = "fp16"
    else:
        quantization = "none"
    declared = declared_layout(_metadata(proto))
    inputs = [_tensor_info(v, True, declared) for v in graph.input if v.name not in weights]
    outputs = [_tensor_info(v, False, "") for v in graph.output]
    facts = {
        "opset": opset_of(proto), "ir_version": proto.ir_version, "op_histogram": dict(ops),
        "weight_dtypes": sorted(set(weights.values())),
    }  # fmt: skip
    return quantization, inputs, outputs, facts


def read_onnx_metadata(path: Path) -> dict[str, Any] | None:
    """The embedded edgeprune metadata, or None."""
    import onnx

    return _metadata(onnx.load(str(path), load_external_data=False))
