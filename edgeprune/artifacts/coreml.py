"""Read a .mlpackage back without macOS: spec I/O, MIL program, compression ops, weight storage, metadata.

Also home of the quiet, TensorFlow-free coremltools import that the exporter and the runtime share.

Everything here works on Linux: the package is opened with ``skip_model_load=True`` and its MIL program is
rebuilt from the protobuf spec, so nothing needs the Core ML framework.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import sys
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from edgeprune.artifacts.files import artifact_digest, artifact_size
from edgeprune.artifacts.layout import declared_layout, image_layout
from edgeprune.errors import MissingExtraError
from edgeprune.schemas import TensorInfo

METADATA_KEY = "edgeprune"
TARGETS = {6: "iOS15", 7: "iOS16", 8: "iOS17", 9: "iOS18"}  # spec version -> minimum deployment target
WEIGHT_OPS = ("conv", "conv_transpose", "linear")
COMPRESSION_OPS = ("constexpr_affine_dequantize", "constexpr_lut_to_dense", "constexpr_blockwise_shift_scale")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Hide coremltools' progress bars and version warnings (they go to stderr and the logging module)."""
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


@cache
def import_coremltools() -> tuple[Any, Any]:
    """(coremltools, coremltools.optimize.coreml), imported once and quietly; MissingExtraError if absent.

    coremltools probes for TensorFlow at import time; with tensorflow-cpu installed (the [tf] extra) that
    alone costs 10-25 s. We never convert TF models, so TensorFlow is hidden during the import unless it is
    already loaded (then the probe is free). Call this before anything else imports coremltools.
    """
    logging.getLogger("coremltools").setLevel(logging.ERROR)  # "torch 2.13 has not been tested", proxies
    hide_tf = "tensorflow" not in sys.modules
    if hide_tf:
        sys.modules["tensorflow"] = None  # type: ignore[assignment]  # makes `import tensorflow` fail fast
    try:
        with quiet():
            import coremltools as ct
            import coremltools.optimize.coreml as cto
    except ImportError as exc:
        raise MissingExtraError("coremltools", "coreml") from exc
    finally:
        if hide_tf and "tensorflow" in sys.modules and sys.modules["tensorflow"] is None:
            del sys.modules["tensorflow"]
    return ct, cto


@dataclass
class WeightInfo:
    """How one conv / linear weight is stored in the program."""

    op: str
    name: str
    shape: list[int]
    storage: str  # fp32 | fp16 | int8 | uint8 | int4 | lut6 | lut4 ...
    compression: str = ""  # the constexpr op producing the weight, if any
    granularity: str = ""  # per-tensor | per-channel | per-block32 ...

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass
class CoreMLInfo:
    """What a .mlpackage really contains."""

    spec_version: int
    deployment_target: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    op_histogram: dict[str, int]
    compression_ops: dict[str, int]
    weights: list[WeightInfo]
    quantization: str
    compressed_fraction: float  # share of conv/linear weight elements stored compressed
    size_bytes: int
    sha256: str
    metadata: dict[str, Any] | None = None
    user_defined: dict[str, str] = field(default_factory=dict)

    @property
    def weight_dtypes(self) -> list[str]:
        return sorted({w.storage for w in self.weights})


# -- the spec file inside the package ---------------------------------------------------------------------
def spec_file(package: Path) -> Path:
    """Path of the root model spec (model.mlmodel) named by the package manifest."""
    manifest = json.loads((Path(package) / "Manifest.json").read_text())
    entry = manifest["itemInfoEntries"][manifest["rootModelIdentifier"]]
    return Path(package) / "Data" / entry["path"]


def load_spec(package: Path) -> Any:
    from coremltools.proto import Model_pb2

    import_coremltools()
    return Model_pb2.Model.FromString(spec_file(package).read_bytes())


def load_program(package: Path) -> Any:
    """The package's MIL program (pymil), rebuilt from the spec and the weights file."""
    import_coremltools()
    from coremltools.converters.mil.frontend.milproto.load import load

    spec = load_spec(package)
    weights = spec_file(package).parent / "weights"
    with quiet():
        return load(spec, spec.specificationVersion, str(weights))


# -- metadata ---------------------------------------------------------------------------------------------
def read_coreml_metadata(package: Path) -> dict[str, Any] | None:
    raw = load_spec(package).description.metadata.userDefined.get(METADATA_KEY)
    return json.loads(raw) if raw else None


# -- structure --------------------------------------------------------------------------------------------
def _dtype(var: Any) -> str:
    from coremltools.converters.mil.mil import types

    name = types.builtin_to_string(var.dtype)
    return {"fp16": "float16", "fp32": "float32", "fp64": "float64"}.get(name, name)


def all_ops(block: Any) -> Iterator[Any]:
    for op in block.operations:
        yield op
        for inner in op.blocks:
            yield from all_ops(inner)


def _weight_info(op: Any) -> WeightInfo | None:
    """Storage of the weight feeding a conv/linear op (None if the weight is computed at run time)."""
    var = op.inputs.get("weight")
    src = var.op if var is not None else None
    if src is None:
        return None
    shape = [int(d) for d in var.shape]
    if src.op_type == "const":
        return WeightInfo(op.op_type, op.name, shape, _dtype(var).replace("float", "fp"))
    if src.op_type == "constexpr_affine_dequantize":
        scale = src.inputs["scale"].val
        gran = "per-channel" if getattr(scale, "size", 1) > 1 else "per-tensor"
        return WeightInfo(op.op_type, op.name, shape, _dtype(src.inputs["quantized_data"]), src.op_type, gran)
    if src.op_type == "constexpr_lut_to_dense":
        lut = src.inputs["lut"].val
        bits = int(round(math.log2(lut.shape[0] if lut.ndim == 1 else lut.shape[-2])))
        gran = "per-tensor" if lut.ndim == 1 or lut.size == lut.shape[-2] * lut.shape[-1] else "grouped"
        return WeightInfo(op.op_type, op.name, shape, f"lut{bits}", src.op_type, gran)
    if src.op_type == "constexpr_blockwise_shift_scale":
        data, scale = src.inputs["data"], src.inputs["scale"].val
        block = data.shape[1] // scale.shape[1] if len(data.shape) > 1 else data.shape[0]
        gran = "per-channel" if len(data.shape) < 2 or scale.shape[1] == 1 else f"per-block{block}"
        return WeightInfo(op.op_type, op.name, shape, _dtype(data), src.op_type, gran)
    return WeightInfo(op.op_type, op.name, shape, "unknown", src.op_type)


def quantization_of(weights: list[WeightInfo]) -> str:
    """none | fp16 | int8-weights | int4-weights | palettized-6bit ... (several joined with '+')."""
    kinds = []
    for w in weights:
        if w.storage.startswith("lut"):
            kind = f"palettized-{w.storage[3:]}bit"
        elif w.compression:
            kind = f"{w.storage.replace('uint', 'int')}-weights"
        else:
            continue
        if kind not in kinds:
            kinds.append(kind)
    if kinds:
        return "+".join(sorted(kinds))
    return "fp16" if any(w.storage == "fp16" for w in weights) else "none"


def _tensor_infos(features: Any, image: bool, layout: str = "") -> list[TensorInfo]:
    from coremltools.proto import FeatureTypes_pb2

    names = FeatureTypes_pb2.ArrayFeatureType.ArrayDataType
    out = []
    for f in features:
        arr = f.type.multiArrayType
        shape = [int(d) for d in arr.shape]
        dtype = {"FLOAT32": "float32", "FLOAT16": "float16", "DOUBLE": "float64", "INT32": "int32"}.get(
            names.Name(arr.dataType), names.Name(arr.dataType).lower()
        )
        out.append(
            TensorInfo(name=f.name, shape=shape, dtype=dtype, layout=image_layout(shape, layout) if image else "")
        )
    return out


def inspect_mlpackage(package: Path) -> CoreMLInfo:
    """Structural read-back of a .mlpackage (no prediction needed)."""
    package = Path(package)
    spec = load_spec(package)
    main = load_program(package).functions["main"]
    ops = [op for op in all_ops(main) if op.op_type != "const"]
    weights = [w for w in (_weight_info(op) for op in ops if op.op_type in WEIGHT_OPS) if w is not None]
    total = sum(w.size for w in weights) or 1
    user = dict(spec.description.metadata.userDefined)
    metadata = json.loads(user[METADATA_KEY]) if METADATA_KEY in user else None
    outputs = _tensor_infos(spec.description.output, False)
    return CoreMLInfo(
        spec_version=spec.specificationVersion,
        deployment_target=TARGETS.get(spec.specificationVersion, f"spec{spec.specificationVersion}"),
        inputs=_tensor_infos(spec.description.input, True, declared_layout(metadata)), outputs=outputs,
        op_histogram=dict(Counter(op.op_type for op in ops)),
        compression_ops={k: v for k, v in Counter(op.op_type for op in ops).items() if k in COMPRESSION_OPS},
        weights=weights, quantization=quantization_of(weights),
        compressed_fraction=sum(w.size for w in weights if w.compression) / total,
        size_bytes=artifact_size(package), sha256=artifact_digest(package), metadata=metadata, user_defined=user,
    )  # fmt: skip
