"""Typed results of the build stages, as recorded in ``manifest.json`` (each stage record's ``summary``).

Every model allows extra keys (criteria, metrics and converters add their own) and is written back with only
the keys it was given, so a summary read from a manifest and written again is unchanged. Readers use the
attributes; the stored JSON stays the documented one (docs/report-json.md).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_serializer, model_validator


class Outcome(BaseModel):
    """Base of every stage result and of its parts. Written back in the key order it was given (fields set
    later come last), so the manifest and report.json read as they always did."""

    model_config = ConfigDict(extra="allow")
    _order: list[str] = PrivateAttr(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _remember_order(cls, data: Any, handler: Any) -> Any:
        model = handler(data)
        if isinstance(data, dict) and isinstance(model, Outcome):
            model._order = list(data)
        return model

    @model_serializer(mode="wrap")
    def _in_given_order(self, handler: Any) -> Any:
        out = handler(self)
        if not isinstance(out, dict):
            return out
        first = {k: out[k] for k in self._order if k in out}
        return {**first, **{k: v for k, v in out.items() if k not in first}}

    def summary(self) -> dict[str, Any]:
        """The plain dict stored in the manifest: exactly the keys that were set."""
        return self.model_dump(exclude_unset=True)


class ModelMetrics(Outcome):
    """Classification metrics of one model on the test split (``edgeprune.metrics``; fractions)."""

    n: int | None = None
    accuracy: float | None = None
    balanced_accuracy: float | None = None
    macro_f1: float | None = None
    per_class_sensitivity: list[float] | None = None
    confusion: list[list[int]] | None = Field(default=None, description="rows = true class, columns = predicted")


class Agreement(Outcome):
    """An artifact's outputs against the PyTorch model it was converted from."""

    n: int | None = None
    top1_agreement: float | None = None
    max_abs: float | None = None


GateState = Literal["passed", "rejected", "not-checked", "not-run"]


class GateResult(Outcome):
    """The accuracy gate's verdict on one artifact (``edgeprune.gate``). A disabled gate is "not checked":
    ``passed`` is None (older runs wrote ``passed: true`` with the one reason ``gate disabled``)."""

    passed: bool | None = None
    reasons: list[str] = Field(default_factory=list)

    @property
    def status(self) -> GateState:
        if self.passed is None or self.reasons == ["gate disabled"]:
            return "not-checked"
        return "passed" if self.passed else "rejected"

    @property
    def verdict(self) -> bool | None:
        """True / False when the gate checked the artifact, None when it was not checked."""
        return None if self.status == "not-checked" else self.passed


class TrainOutcome(Outcome):
    trained: bool | None = Field(default=None, description="False: the dense model was loaded from weights")
    test: ModelMetrics | None = None
    history: list[dict[str, Any]] = Field(default_factory=list)


class PruneOutcome(Outcome):
    criterion: str | None = None
    budget: dict[str, Any] = Field(default_factory=dict)
    achieved_reduction: float | None = None
    macs: dict[str, int] = Field(default_factory=dict)
    params: dict[str, int] = Field(default_factory=dict)
    widths: dict[str, dict[str, int]] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    recovery: str = "finetune"
    test_before_finetune: ModelMetrics | None = None

    def report_view(self) -> dict[str, Any]:
        """What report.json shows under ``prune``: the summary without the pre-fine-tuning metrics."""
        return {k: v for k, v in self.summary().items() if k != "test_before_finetune"}


class FinetuneOutcome(Outcome):
    pruned: bool = False
    recovery: str = "finetune"
    skipped_reason: str | None = None
    continued_from: str | None = Field(default=None, description="set when fine-tuning continued a searched model")
    epochs_planned: int | None = None
    length_rule: str | None = Field(default=None, description="how the fine-tuning length was chosen")
    best_epoch: int | None = None
    selection: dict[str, Any] = Field(default_factory=dict, description="checkpoint rule on validation, and why "
                                      "the kept epoch was kept")
    test: ModelMetrics | None = None
    history: list[dict[str, Any]] = Field(default_factory=list)


class ExportedArtifact(Outcome):
    """One exported file: the exporter's record plus the variant and checkpoint it came from."""

    name: str
    file: str = Field(description="relative to the run directory")
    format: str
    precision: str
    sha256: str
    size_bytes: int
    backend: str | None = None
    quantization: str | None = None
    io_layout: str | None = None
    variant: str | None = None
    checkpoint: str = ""
    macs: int | None = None
    params: int | None = None
    notes: list[str] = Field(default_factory=list)


class ExportOutcome(Outcome):
    artifacts: list[ExportedArtifact] = Field(default_factory=list)

    def by_name(self) -> dict[str, ExportedArtifact]:
        return {a.name: a for a in self.artifacts}


class VerifiedArtifact(Outcome):
    """One artifact run in its own runtime on the test split."""

    metrics: ModelMetrics | None = None
    vs_torch: Agreement | None = None
    vs_dense_float: dict[str, Any] | None = Field(default=None, description="paired bootstrap vs the dense float model")
    verification_kind: str | None = None
    gate: GateResult | None = None
    notes: list[str] = Field(default_factory=list)

    @property
    def gate_status(self) -> GateState:
        return self.gate.status if self.gate is not None else "not-run"


class VerifyOutcome(Outcome):
    test_size: int | None = None
    selection_split: str | None = Field(default=None, description="split every choice of verify read (val)")
    test_reads: list[str] = Field(default_factory=list, description="purpose of each read of the test split")
    gate_power: dict[str, Any] | None = Field(default=None, description="edgeprune.gate.gate_power per split")
    reference: dict[str, ModelMetrics] = Field(default_factory=dict, description="checkpoint -> metrics")
    artifacts: dict[str, VerifiedArtifact] = Field(default_factory=dict)
    repairs: dict[str, dict[str, Any]] = Field(default_factory=dict, description="int8 repair ladders run")

    def repaired_files(self) -> list[str]:
        return [a["file"] for r in self.repairs.values() for a in r.get("attempts", []) if "file" in a]


class ProfileOutcome(Outcome):
    measurements: list[dict[str, Any]] = Field(default_factory=list, description="edgeprune.schemas.Measurement")
    pruning_efficiency: list[dict[str, Any]] = Field(default_factory=list)


class StageOutcomes(BaseModel):
    """The outcome of every stage that has one (None: not run, or not finished)."""

    model_config = ConfigDict(extra="ignore")

    train: TrainOutcome | None = None
    prune: PruneOutcome | None = None
    finetune: FinetuneOutcome | None = None
    export: ExportOutcome | None = None
    verify: VerifyOutcome | None = None
    profile: ProfileOutcome | None = None

    @classmethod
    def from_summaries(cls, summaries: dict[str, dict[str, Any]]) -> StageOutcomes:
        return cls.model_validate(summaries)

    def record(self, stage: str, summary: dict[str, Any]) -> Outcome:
        """Parse ``summary`` (from a manifest) as ``stage``'s outcome, keep it and return it."""
        outcome = getattr(type(self).model_validate({stage: summary}), stage)
        self.keep(stage, outcome)
        return outcome

    def keep(self, stage: str, outcome: Outcome) -> None:
        if stage not in type(self).model_fields:
            raise KeyError(f"no outcome slot for stage '{stage}'")
        setattr(self, stage, outcome)

    @property
    def exported(self) -> list[ExportedArtifact]:
        return list(self.export.artifacts) if self.export else []

    @property
    def verified(self) -> dict[str, VerifiedArtifact]:
        return dict(self.verify.artifacts) if self.verify else {}

    @property
    def measurements(self) -> list[dict[str, Any]]:
        return list(self.profile.measurements) if self.profile else []
