"""Records shared by the profiler, the Android app and the backend (one schema, three producers)."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

MEASUREMENT_SCHEMA_VERSION = 1
INT64_MAX = 2**63 - 1  # larger integers overflow the app's and the databases' number types


def nonfinite_path(value: Any, path: str = "") -> str | None:
    """Where ``value`` holds a NaN, an infinity or an integer beyond 64 bits (``None`` when all are finite)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path or "(value)")
    if isinstance(value, int):
        return None if -INT64_MAX - 1 <= value <= INT64_MAX else (path or "(value)")
    if isinstance(value, BaseModel):
        value = {**dict(value), **(value.model_extra or {})}
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        where = f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else str(key))
        if (found := nonfinite_path(item, where)) is not None:
            return found
    return None


def finite_or_none(value: Any) -> Any:
    """A copy of JSON-like ``value`` with NaN, infinities and over-long integers replaced by ``None``."""
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(v) for v in value]
    return value if nonfinite_path(value) is None else None


class FiniteModel(BaseModel):
    """Refuses NaN, Infinity and overflowing numbers (JSON ``1e400`` parses as infinity) in every field."""

    model_config = ConfigDict(allow_inf_nan=False)

    @model_validator(mode="after")
    def _numbers_are_finite(self) -> Any:
        where = nonfinite_path({**dict(self), **(self.model_extra or {})})
        if where is not None:
            raise ValueError(f"{where} must be a finite number within 64 bits (NaN, Infinity and overflowing "
                             "values such as 1e400 are refused; send null when there is no value)")
        return self


class DeviceFingerprint(FiniteModel):
    """What the numbers were measured on."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    kind: str = Field(description="host | adb | qemu-arm64 | ssh | android-app")
    id: str = Field(description="serial, hostname or other stable identifier")
    model: str = ""
    abi: str = ""
    os: str = ""
    soc: str = ""
    cores: int | None = None
    cpu_governor: str = ""
    battery_temp_c: float | None = None


class LatencyStats(FiniteModel):
    """Summary of repeated timings, in milliseconds (same maths on every device)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    n: int
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    trimmed_mean_ms: float


class ParityStats(FiniteModel):
    """An emulated lane's outputs compared with the host (x86) runtime's on the same inputs."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    reference: str = Field("x86 ai-edge-litert", description="what the lane's outputs were compared with")
    inputs: str = Field(description="which inputs, e.g. '8 random normal inputs (seed 0)'")
    n: int
    max_abs: float = Field(description="largest absolute output difference (quantized outputs dequantized)")
    mean_abs: float
    top1_agreement: float = Field(description="fraction of inputs with the same top-1 class")
    exact_fraction: float = Field(description="fraction of output values that are bit-identical")


class Measurement(FiniteModel):
    """One profiling result of one artifact on one device configuration."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    schema_version: int = MEASUREMENT_SCHEMA_VERSION
    id: str = Field(default_factory=lambda: uuid.uuid4().hex, description="client-generated, for idempotent upload")
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    artifact_name: str
    artifact_sha256: str
    device: DeviceFingerprint
    runtime: str = Field(description="e.g. 'ai-edge-litert 2.3.0' or 'benchmark_model'")
    threads: int
    delegate: str = Field("xnnpack", description="xnnpack | none | gpu | nnapi")
    warmup: int
    runs: int
    latency: LatencyStats | None = None
    timing_meaningful: bool = Field(True, description="False for emulated lanes (qemu): never show as latency")
    init_ms: float | None = None
    first_inference_ms: float | None = None
    peak_rss_mb: float | None = None
    load_delta_mb: float | None = None
    pss_mb: float | None = None
    baseline_rss_mb: float | None = Field(None, description="RSS of the same process with the runtime imported "
                                          "and no model loaded (host/ssh lanes)")
    model_peak_mb: float | None = Field(None, description="model-attributable peak: the process's peak RSS while "
                                        "loading and running the model minus baseline_rss_mb")
    parity: ParityStats | None = Field(None, description="emulated lanes: outputs vs the x86 runtime")
    extra: dict[str, Any] = Field(default_factory=dict)


BUNDLE_SCHEMA_VERSION = 1


class TensorInfo(FiniteModel):
    """An input or output tensor as read back from the artifact file itself."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str
    shape: list[int]
    dtype: str = Field(description="float32 | float16 | int8 | uint8 | int16")
    layout: str = Field("", description="NCHW | NHWC for image inputs, empty for logits")
    quant_scale: float | None = None
    quant_zero_point: int | None = None


class BundleArtifact(FiniteModel):
    """One model file inside an app bundle."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    file: str = Field(description="path relative to the bundle root")
    format: str = Field(description="tflite | onnx | coreml")
    precision: str = Field(description="fp32 | fp16 | dynamic-int8 | int8 | int16x8 ...")
    quantization: str = Field("", description="mode read back from the file: none | fp16 | dynamic | full-int8 ...")
    sha256: str
    size_bytes: int
    inputs: list[TensorInfo] = Field(default_factory=list)
    outputs: list[TensorInfo] = Field(default_factory=list)
    gate: str = Field("not-run", description="passed | rejected | not-run")


class BundleFile(FiniteModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    path: str
    sha256: str
    size_bytes: int


class GoldenSample(FiniteModel):
    """A real test input with the output the artifact must reproduce on the phone."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    artifact: str = Field("", description="the artifact file whose outputs expected_logits are; every artifact "
                          "has its own samples ('' in old bundles: the primary artifact)")
    input_file: str = Field(
        description=".npy (float32, already preprocessed, model layout) relative to the bundle root"
    )
    image_file: str = Field("", description="the raw image (PNG) before preprocessing, for the app's own pipeline")
    label: int
    expected_logits: list[float]
    expected_class: int
    atol: float


class BundleModelJson(FiniteModel):
    """``model.json`` at the root of every bundle: what an app needs to load the model without guessing."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    schema_version: int = BUNDLE_SCHEMA_VERSION
    name: str
    version: str
    created_at: str
    app: str = "android"
    artifacts: list[BundleArtifact]
    preprocessing: dict[str, Any] = Field(description="edgeprune.contract.PreprocessContract as a dict")
    labels_file: str = "labels.txt"
    class_names: list[str]
    decision_thresholds: dict[str, float] = Field(default_factory=dict)
    intended_use: str = ""
    metrics: dict[str, Any] = Field(default_factory=dict, description="per-artifact verification metrics")
    golden_samples: list[GoldenSample] = Field(default_factory=list)
    manifest_file: str = "manifest.json"
    files: list[BundleFile] = Field(default_factory=list, description="sha256 of every other file in the bundle")
