"""The stable schema of ``report.json`` (documented in docs/report-json.md).

Compatibility rule: within one ``schema_version`` fields are only ever added; renaming or removing a field,
or changing its meaning or unit, bumps the version. Top-level objects and artifact rows forbid unknown keys so
a test notices any drift; summaries produced by pluggable code (criteria, metrics) allow extra keys.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1  # the one version of report.json; json_report writes it, ReportJson accepts only it


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Interval(_Open):
    """A paired-bootstrap difference ``new - ref`` (fractions, not percent) with its confidence interval."""

    delta: float
    lo: float
    hi: float
    ref: float | None = None
    new: float | None = None


class Metrics(_Open):
    """Classification metrics of one model on the test split (fractions in [0, 1])."""

    n: int
    accuracy: float
    balanced_accuracy: float
    macro_f1: float
    per_class_sensitivity: list[float]
    per_class_specificity: list[float] = Field(default_factory=list)
    per_class_precision: list[float] = Field(default_factory=list)
    auroc_ovr: list[float | None] = Field(default_factory=list)
    macro_auroc: float | None = None
    confusion: list[list[int]] = Field(default_factory=list, description="rows = true class, columns = predicted")
    support: list[int] = Field(default_factory=list)


GateState = Literal["passed", "rejected", "not-checked", "not-run"]


class GateDetail(_Open):
    """Verdict of the accuracy gate; drops in percentage points on the upper confidence bound."""

    passed: bool | None = Field(description="null: the gate is disabled (not checked)")
    status: Literal["passed", "rejected", "not-checked"] | None = None
    reasons: list[str] = Field(default_factory=list)
    unchecked_classes: list[str] = Field(default_factory=list, description="classes with no test images")
    bal_acc_drop_ub_pp: float | None = None
    worst_class: str | None = None
    worst_class_drop_ub_pp: float | None = None
    thresholds: dict[str, float] = Field(default_factory=dict)


class Drift(_Open):
    """Artifact outputs vs the PyTorch model it was converted from, on the test split."""

    n: int
    top1_agreement: float
    max_abs: float
    mean_abs: float | None = None
    cosine: float | None = None


class VsDense(_Strict):
    balanced_accuracy: Interval | None = None
    accuracy: Interval | None = None
    per_class_sensitivity: list[Interval] | None = None
    confidence: float | None = None


class EmulatedParity(_Open):
    """An emulated lane's outputs (e.g. qemu-arm64) vs the x86 runtime on the same inputs."""

    device: str = Field(description="the lane, e.g. qemu-arm64")
    reference: str
    inputs: str
    n: int
    max_abs: float
    mean_abs: float
    top1_agreement: float
    exact_fraction: float


class ArtifactRow(_Strict):
    """One exported model file, verified in its own runtime and profiled."""

    name: str
    variant: str | None = Field(None, description="pruned | dense")
    format: str = Field(description="tflite | onnx | coreml")
    backend: str | None = None
    precision: str = Field(description="requested precision: fp32 | fp16 | dynamic-int8 | int8")
    quantization: str | None = Field(None, description="read back from the file")
    file: str = Field(description="relative to the run directory")
    sha256: str
    size_bytes: int
    macs: int | None = None
    params: int | None = None
    accuracy: float | None = None
    balanced_accuracy: float | None = None
    macro_f1: float | None = None
    per_class_sensitivity: list[float] | None = None
    top1_agreement: float | None = Field(None, description="vs the PyTorch model it came from")
    max_abs_logit_error: float | None = None
    gate_passed: bool | None = Field(None, description="null: not verified, or verified with the gate disabled")
    gate_reasons: list[str] = Field(default_factory=list)
    gate_status: GateState = Field("not-run", description="not-checked: verified, gate disabled; not-run: not verified")
    latency_p50_ms: dict[str, float] = Field(
        default_factory=dict, description="'<device kind>:<threads>t' -> p50 ms; only meaningful timings"
    )
    peak_rss_mb: float | None = None
    model_peak_mb: float | None = Field(None, description="peak RSS of loading and running the model minus the "
                                        "same process with only the runtime loaded")
    emulated_parity: EmulatedParity | None = None
    verification_kind: str | None = Field(None, description="runtime | linux-structural+simulated-weights | ...")
    gate: GateDetail | None = None
    drift: Drift | None = None
    vs_dense_float: VsDense | None = Field(None, description="paired bootstrap vs the dense float PyTorch model")
    notes: list[str] = Field(default_factory=list)


class ClassPower(_Strict):
    name: str
    n: int = Field(description="images of the class in the split")
    one_flip_ub_pp: float | None = Field(description="drop bound of a candidate losing one correct prediction")
    two_flip_ub_pp: float | None = None
    certifiable: bool = Field(description="one_flip_ub_pp <= max_class_sensitivity_drop")


class SplitPower(_Strict):
    split: str
    n: int
    classes: list[ClassPower]
    bal_acc_one_flip_ub_pp: float | None = None
    bal_acc_certifiable: bool


class GatePower(_Strict):
    """What the validation and test sizes can certify (edgeprune.gate.gate_power)."""

    definition: str
    n_boot: int
    seed: int
    limits: dict[str, float]
    splits: dict[str, SplitPower] = Field(description="val, test")


class RepairStep(_Strict):
    """One attempt of the int8 repair ladder, as judged on the validation split."""

    rung: int
    step: str = Field(description="per-channel | qat | calibration | int16-activations | float-layers")
    status: Literal["passed", "failed", "skipped", "unavailable", "error"]
    reason: str = Field(description="what the attempt tried, and why it was skipped or failed to convert")
    file: str | None = Field(None, description="the variant's file, relative to the run directory")
    quantization: str | None = None
    balanced_accuracy: float | None = Field(None, description="on the validation split")


class RepairSummary(_Strict):
    """The int8 repair ladder of one full-int8 artifact the gate rejected on the validation split."""

    artifact: str = Field(description="the rejected artifact")
    selection_split: str = Field(description="val: every choice of the ladder read the validation split")
    won: RepairStep | None = Field(None, description="the first attempt that passed (null: none did)")
    why: str = Field(description="one line: which rung won and what it did, or why nothing was chosen")
    attempts: list[RepairStep] = Field(default_factory=list)


class GateSummary(_Strict):
    enabled: bool
    passed: bool | None = Field(description="null when nothing was verified or the gate is disabled")
    status: Literal["passed", "failed", "not-checked", "not-run"] = Field(
        "not-run", description="not-checked: the gate is disabled; not-run: nothing was verified")
    rejected: list[str] = Field(default_factory=list)
    selection_split: str | None = Field(None, description="split every choice (e.g. the int8 repair) read: val")
    test_reads: list[str] = Field(default_factory=list, description="each read of the test split, by purpose")
    power: GatePower | None = None
    repairs: list[RepairSummary] = Field(default_factory=list, description="int8 repair ladders run on validation")


class StageEntry(_Strict):
    name: str = Field(description="train | prune | finetune | export | verify | profile")
    status: Literal["pending", "running", "done", "skipped", "failed", "stale"]
    seconds: float | None = None
    key: str = Field("", description="cache key: hash of parameters, input sha256s and tool versions")


class Calibration(_Strict):
    n: int
    ids_sha256: str | None = None


class DataInfo(_Open):
    name: str
    source: str
    source_sha256: str
    class_names: list[str]
    sizes: dict[str, int]
    class_counts: dict[str, list[int]] = Field(default_factory=dict)


class PruneSummary(_Open):
    criterion: str
    budget: dict[str, Any]
    achieved_reduction: float
    macs: dict[str, int]
    params: dict[str, int]
    widths: dict[str, dict[str, int]] = Field(default_factory=dict, description="layer -> {before, after}")
    latency: dict[str, Any] | None = Field(
        None, description="latency budget only (edgeprune.latency): device, fingerprint, table, dense_ms, target_ms, "
        "predicted_ms, measured_ms, prediction_error, channel_multiple and its evidence, timings_taken, layer_ms")
    unpruned: list[dict[str, str]] = Field(
        default_factory=list,
        description="layers left unpruned because torch-pruning cannot follow their channels (channel shuffle, "
                    "split, reshape): [{layer, reason}]")


class SearchTrial(_Open):
    """One trial of the search, scored on the validation split (drops: pp, upper 95% bootstrap bound)."""

    number: int
    state: str = Field(description="complete | pruned (stopped early by the pruner) | fail | running")
    params: dict[str, Any] = Field(description="criterion, level (MAC reduction asked for), epochs (recovery)")
    seed: int | None = None
    macs: int | None = None
    cost: float | None = Field(None, description="remaining fraction of dense MACs (params for objective size)")
    val_balanced_accuracy: float | None = None
    val_worst_class: str | None = None
    val_worst_class_sensitivity: float | None = None
    bal_acc_drop_ub_pp: float | None = None
    worst_class_drop_ub_pp: float | None = None
    meets_contract: bool | None = Field(None, description="on validation; null when the trial did not finish")
    latency_ms: float | None = Field(None, description="finalists: p50 at 1 thread, fp32 .tflite, first device")
    size_kb: float | None = Field(None, description="finalists: fp32 .tflite size")
    objective_value: float | None = None
    finalist: bool = False
    seconds: float | None = None
    why_rejected: str | None = Field(None, description="null for the chosen trial")


class SearchSummary(_Open):
    """The accuracy-constrained search that chose the pruned model (no fixed budget given)."""

    study: str
    objective: str = Field(description="latency | size | macs")
    proxy: str = Field(description="what the trials minimise before the finalists are timed: macs | params")
    contract: dict[str, Any]
    space: dict[str, Any]
    pruner: str
    seconds: float
    chosen: int | None
    trials: list[SearchTrial]


class ReportJson(_Strict):
    """``report.json`` written at the end of every build."""

    schema_version: Literal[SCHEMA_VERSION]  # type: ignore[valid-type]
    run_id: str
    created: str
    updated: str
    edgeprune_version: str
    command: list[str]
    config: dict[str, Any]
    data: DataInfo
    calibration: Calibration
    prune: PruneSummary | None = None
    search: SearchSummary | None = Field(None, description="present when the search chose the pruned model")
    dense_test: Metrics | None = None
    pruned_test: Metrics | None = None
    artifacts: list[ArtifactRow]
    gate: GateSummary
    stages: list[StageEntry]
    versions: dict[str, str]


def validate_report(obj: dict[str, Any]) -> ReportJson:
    """Parse a report.json dict; raises pydantic.ValidationError on schema drift."""
    return ReportJson.model_validate(obj)
