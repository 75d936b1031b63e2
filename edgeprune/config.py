"""The build configuration: pydantic models whose keys mirror the CLI flags (`edgeprune.toml`)."""

from __future__ import annotations

import difflib
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edgeprune.budget import Budget
from edgeprune.errors import EdgepruneError

MEMORY_DATA = "memory:"  # data.source prefix of arrays handed over in Python (edgeprune.data.arrays)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(_Section):
    name: str = Field("resnet20", description="zoo name, 'file.py:factory' or 'torchvision:NAME'")
    weights: str | None = Field(None, description="state-dict checkpoint of a trained model (skips training)")
    pretrained: bool = False
    width_mult: float | None = None


class DataConfig(_Section):
    source: str = Field("embedded", description="'embedded', a MedMNIST .npz, an image or DICOM folder, or a "
                                                "labels .csv of DICOM files")
    dicom_window: str | None = Field(None, description="DICOM only: 'CENTER,WIDTH' replacing the files' own window")
    image_size: int | None = Field(None, description="model input size; default: the dataset's own size, at least 32")
    in_channels: int = 3
    mean: list[float] | None = None
    std: list[float] | None = None
    val_fraction: float = Field(0.15, gt=0, lt=0.9)
    test_fraction: float = Field(0.2, gt=0, lt=0.9)
    calib_size: int = Field(128, ge=8, description="class-stratified calibration sample (from train)")
    max_train: int | None = Field(None, description="cap on training images (quick runs)")


class TrainConfig(_Section):
    epochs: int = Field(12, ge=0)
    batch_size: int = Field(64, ge=1)
    optimizer: Literal["sgd", "adamw"] = "adamw"
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = 5e-4
    balance: Literal["weighted-loss", "sampler", "none"] = "weighted-loss"
    patience: int = Field(6, ge=1, description="early stopping on validation balanced accuracy")
    augment: bool = True
    device: str = "auto"


class FinetuneConfig(_Section):
    epochs: int | None = Field(None, ge=0, description="None: scaled to the data (finetune.images images seen)")
    images: int = Field(8000, ge=1, description="images seen when epochs is not given: ceil(images / n_train) epochs")
    min_epochs: int = Field(3, ge=1, description="lower bound of the scaled length")
    max_epochs: int = Field(30, ge=1, description="upper bound of the scaled length")
    lr: float = Field(1e-3, gt=0)
    optimizer: Literal["sgd", "adamw"] = "adamw"
    distill: bool = Field(True, description="knowledge distillation from the unpruned model")
    temperature: float = Field(4.0, gt=0)
    alpha: float = Field(0.5, ge=0, le=1, description="weight of the distillation term")
    kd_weighting: Literal["none", "class"] = Field(
        "class", description="'class': each image's distillation term weighted by its class's inverse frequency")
    select: Literal["balanced-accuracy", "worst-class"] = Field(
        "worst-class", description="checkpoint rule on validation: best balanced accuracy, or best balanced accuracy "
        "among epochs whose worst-class sensitivity is within worst_class_margin of the dense model's")
    worst_class_margin: float = Field(0.05, ge=0, le=1, description="fraction (0.05 = 5 pp) for select=worst-class")
    patience: int = 4

    @model_validator(mode="after")
    def _bounds(self) -> FinetuneConfig:
        if self.min_epochs > self.max_epochs:
            raise ValueError(f"min_epochs ({self.min_epochs}) is above max_epochs ({self.max_epochs})")
        return self


class PruneConfig(_Section):
    criterion: str = "l1"
    flops_reduction: float | None = Field(None, ge=0, lt=1, description="fixed budget; none: search ([search])")
    params_reduction: float | None = Field(None, ge=0, lt=1)
    latency_reduction: float | None = Field(None, ge=0, lt=1, description="fixed budget: fraction of the latency "
                                            "measured on latency_device to remove (edgeprune.latency)")
    latency_device: str | None = Field(None, description="lane the latency table is measured on "
                                       "(default: the first profile device)")
    tolerance: float = Field(0.02, gt=0, description="allowed |achieved - target| as a fraction of the dense count")
    round_to: int | None = Field(None, ge=1)
    min_channels: int = Field(4, ge=1, description="floor: no layer keeps fewer channels")
    min_keep_ratio: float = Field(0.1, ge=0, le=1, description="floor: no layer keeps a smaller fraction")
    protect_stem: bool = True
    protect_classifier: bool = True
    iterative_steps: int = Field(1, ge=1,
                                 description="gradual pruning in k steps with fine-tuning between (cubic schedule)")
    options: dict[str, Any] = Field(default_factory=dict, description="criterion-specific options")

    @model_validator(mode="after")
    def _one_budget(self) -> PruneConfig:
        Budget.from_options(self.flops_reduction, self.params_reduction, self.tolerance, self.latency_reduction)
        return self


class SearchConfig(_Section):
    """The accuracy-constrained search that runs when no fixed budget is given (edgeprune.search)."""

    enabled: bool = Field(True, description="search when neither flops_reduction nor params_reduction is given")
    objective: Literal["latency", "size", "macs"] = Field(
        "latency", description="what the chosen trial minimises (latency: on the first profile device)")
    latency_budget_ms: float | None = Field(None, gt=0, description="hard budget: p50 ms at 1 thread, fp32 .tflite")
    size_budget_kb: float | None = Field(None, gt=0, description="hard budget: size of the fp32 .tflite in KB")
    min_class_sensitivity: float | None = Field(
        None, ge=0, le=100, description="contract: absolute floor (%) on every class's validation sensitivity")
    criteria: list[str] = Field(default_factory=lambda: ["beta-rank", "l1", "taylor"])
    min_level: float = Field(0.2, gt=0, lt=1, description="smallest MAC reduction tried")
    max_level: float = Field(0.8, gt=0, lt=1, description="largest MAC reduction tried")
    level_step: float = Field(0.05, gt=0, lt=1)
    recovery_epochs: list[int] = Field(default_factory=lambda: [2, 4], description="recovery lengths to choose from")
    trials: int = Field(6, ge=1, description="trials in the study (finished ones are never redone)")
    pruner: Literal["successive-halving", "hyperband", "none"] = "successive-halving"
    finalists: int = Field(3, ge=1, description="best feasible trials timed for real (objective latency or size)")
    jobs: int = Field(1, ge=1, description="trials run in this many local processes")
    ray_address: str | None = Field(None, description="run trials as tasks on this Ray cluster ('auto', host:port)")

    @model_validator(mode="after")
    def _range(self) -> SearchConfig:
        if self.min_level > self.max_level:
            raise ValueError(f"min_level {self.min_level:g} is above max_level {self.max_level:g}")
        if not self.criteria or not self.recovery_epochs:
            raise ValueError("criteria and recovery_epochs need at least one entry")
        return self


class ExportConfig(_Section):
    targets: list[str] = Field(default_factory=lambda: ["tflite"])
    precisions: list[str] = Field(default_factory=lambda: ["fp32", "fp16", "dynamic-int8", "int8"])
    backend: str | None = None
    io_layout: Literal["nchw", "nhwc"] = "nchw"
    io_dtype: Literal["float32", "int8", "uint8"] | None = Field(
        None, description="I/O dtype of full-int8 TFLite files")
    export_dense: bool = Field(True, description="also export the unpruned model (fp32, int8) for comparison")


class VerifyConfig(_Section):
    max_samples: int | None = Field(None, description="cap on test images used for verification")
    fp32_tolerance: float = 1e-3
    max_bal_acc_drop: float = Field(5.0, description="gate: percentage points, on the upper confidence bound")
    max_class_sensitivity_drop: float = Field(15.0, description="gate: percentage points, per class")
    gate: bool = True
    bootstrap: int = 1000
    repair_comparisons: bool = Field(
        False, description="also run the int8 repair ladder on the dense comparison files of a pruned build "
                           "(off: the ladder repairs what the build ships; at 224 px one dense ladder took 36 min)")


class ProfileConfig(_Section):
    devices: list[str] = Field(default_factory=lambda: ["host"])
    threads: list[int] | None = Field(None, description="default: 1 and all cores")
    warmup: int = 10
    runs: int = 50

    def thread_counts(self) -> list[int]:
        return self.threads or default_threads()


def default_threads() -> list[int]:
    """Thread counts profiled when none are given: 1 and all cores."""
    return sorted({1, os.cpu_count() or 1})


class BuildConfig(_Section):
    name: str | None = None
    out: str | None = Field(None, description="run directory (default runs/<name>)")
    seed: int = 0
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    prune: PruneConfig = Field(default_factory=PruneConfig)
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    verify: VerifyConfig = Field(default_factory=VerifyConfig)
    profile: ProfileConfig = Field(default_factory=ProfileConfig)

    def run_name(self) -> str:
        if self.name:
            return self.name
        src = self.data.source
        if src.startswith(MEMORY_DATA):  # in-memory arrays: 'memory:<name>@<hash>'
            src = src[len(MEMORY_DATA):].split("@")[0]
        elif src != "embedded":
            src = Path(src).stem
        criterion = "search" if self.searches() else self.prune.criterion
        return f"{self.model.name.split(':')[-1].split('@')[0]}-{src}-{criterion}"

    def searches(self) -> bool:
        """No fixed budget was given (both reductions unset) and the search is on."""
        p = self.prune
        return (self.search.enabled and p.flops_reduction is None and p.params_reduction is None
                and p.latency_reduction is None)


def _section_fields(model: type[BaseModel], path: tuple[str | int, ...]) -> list[str]:
    cls: Any = model
    for part in path[:-1]:
        field = cls.model_fields.get(str(part)) if hasattr(cls, "model_fields") else None
        if field is None or not isinstance(field.annotation, type) or not issubclass(field.annotation, BaseModel):
            return []
        cls = field.annotation
    return list(cls.model_fields)


def explain_validation_error(exc: ValidationError, origin: str) -> EdgepruneError:
    """Turn the first pydantic error into a one-line message, with a typo suggestion for unknown keys."""
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    where = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        known = _section_fields(BuildConfig, loc)
        close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.5)
        fix = f"did you mean '{close[0]}'?" if close else f"known keys here: {', '.join(known)}"
        return EdgepruneError(f"{origin}: unknown key '{where}'", fix)
    return EdgepruneError(f"{origin}: invalid value for '{where}': {err['msg']}", "fix the value and run again")


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> BuildConfig:
    """Read ``edgeprune.toml`` (optional) and apply flag overrides given as dotted keys."""
    data: dict[str, Any] = {}
    origin = "flags"
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise EdgepruneError(f"config file {p} does not exist", "pass an existing edgeprune.toml or drop --config")
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise EdgepruneError(f"{p} is not valid TOML ({exc})", "fix the syntax") from None
        origin = str(p)
    return validate_config(apply_overrides(data, overrides), origin)


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Set dotted keys (``prune.flops_reduction``) in a nested config dict; None values are ignored."""
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return data


def validate_config(data: dict[str, Any], origin: str) -> BuildConfig:
    """Validate a config dict; a criterion written ``name:key=value`` is split into name and options."""
    prune = data.get("prune")
    if isinstance(prune, dict) and isinstance(prune.get("criterion"), str) and ":" in prune["criterion"]:
        name, options = split_criterion(prune["criterion"])
        data = {**data, "prune": {**prune, "criterion": name, "options": {**prune.get("options", {}), **options}}}
    try:
        return BuildConfig.model_validate(data)
    except ValidationError as exc:
        raise explain_validation_error(exc, origin) from None


def parse_options(pairs: list[str] | None, example: str = "--option beta_mode=paper") -> dict[str, Any] | None:
    """``key=value`` pairs (values parsed as numbers/booleans when they look like them); None when empty."""
    if not pairs:
        return None
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise EdgepruneError(f"option '{pair}' is not key=value", f"write it like {example}")
        key, raw = pair.split("=", 1)
        out[key.strip()] = _option_value(raw.strip())
    return out


def _option_value(raw: str) -> Any:
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            continue
    return raw


def split_criterion(label: str) -> tuple[str, dict[str, Any]]:
    """``name:key=value:key=value`` -> (criterion name, options)."""
    name, *pairs = [part.strip() for part in label.split(":")]
    return name, parse_options(pairs, example="--criterion beta-rank:beta_mode=paper") or {}


# Flag / keyword names (CLI flags with '-' as '_', keyword arguments of edgeprune.build) -> dotted config keys.
FLAG_TO_KEY = {
    "model": "model.name", "weights": "model.weights", "pretrained": "model.pretrained",
    "width_mult": "model.width_mult", "data": "data.source", "image_size": "data.image_size",
    "max_train": "data.max_train", "epochs": "train.epochs", "lr": "train.lr", "batch_size": "train.batch_size",
    "balance": "train.balance", "train_device": "train.device", "seed": "seed", "criterion": "prune.criterion",
    "flops_reduction": "prune.flops_reduction", "params_reduction": "prune.params_reduction",
    "latency_reduction": "prune.latency_reduction", "latency_device": "prune.latency_device",
    "round_to": "prune.round_to", "min_channels": "prune.min_channels", "iterative_steps": "prune.iterative_steps",
    "finetune_epochs": "finetune.epochs", "distill": "finetune.distill", "name": "name",
    "targets": "export.targets", "target": "export.targets", "precisions": "export.precisions",
    "backend": "export.backend", "io_layout": "export.io_layout", "io_dtype": "export.io_dtype",
    "calib_size": "data.calib_size", "profile_devices": "profile.devices", "devices": "profile.devices",
    "threads": "profile.threads", "runs": "profile.runs", "max_bal_acc_drop": "verify.max_bal_acc_drop",
    "max_class_sensitivity_drop": "verify.max_class_sensitivity_drop", "options": "prune.options",
    "objective": "search.objective", "latency_budget": "search.latency_budget_ms",
    "size_budget": "search.size_budget_kb", "min_class_sensitivity": "search.min_class_sensitivity",
    "search_criteria": "search.criteria", "search_trials": "search.trials", "jobs": "search.jobs",
    "ray_address": "search.ray_address", "recovery_epochs": "search.recovery_epochs",
}


def _field_keys() -> dict[str, str]:
    """Every config field by its dotted key, plus its bare name when only one section has it."""
    keys: dict[str, str] = {}
    bare: dict[str, list[str]] = {}
    for section, field in BuildConfig.model_fields.items():
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            for name in sub.model_fields:
                keys[f"{section}.{name}"] = f"{section}.{name}"
                bare.setdefault(name, []).append(f"{section}.{name}")
        else:
            keys[section] = section
    keys.update({name: dotted[0] for name, dotted in bare.items() if len(dotted) == 1 and name not in keys})
    return keys


def option_key(name: str) -> str:
    """The dotted config key of a flag or keyword name (``epochs``, ``finetune_epochs``, ``prune.tolerance``)."""
    if name in FLAG_TO_KEY:
        return FLAG_TO_KEY[name]
    keys = _field_keys()
    if name in keys:
        return keys[name]
    close = difflib.get_close_matches(name, [*FLAG_TO_KEY, *keys], n=1, cutoff=0.6)
    raise EdgepruneError(f"unknown option '{name}'",
                         f"did you mean '{close[0]}'?" if close else "use a CLI flag name or a dotted config key")


def overrides(**flags: Any) -> dict[str, Any]:
    """Map the given (non-None) flag values to dotted config keys; a comma string fills a list field."""
    out: dict[str, Any] = {}
    for flag, value in flags.items():
        if value is None:
            continue
        key = option_key(flag)
        if isinstance(value, str) and key in _LIST_KEYS:
            value = [v.strip() for v in value.split(",") if v.strip()]
        out[key] = value
    params = out.get("prune.params_reduction")
    if params is not None and "prune.flops_reduction" not in out:  # a params budget replaces the default flops one
        out.update({f"prune.{key}": value for key, value in Budget("params", params).options().items()})
    latency = out.get("prune.latency_reduction")
    if latency and "prune.flops_reduction" not in out and "prune.params_reduction" not in out:
        out.update({f"prune.{key}": value for key, value in Budget("latency", latency).options().items()})
    return out


_LIST_KEYS = frozenset({"export.targets", "export.precisions", "profile.devices", "search.criteria"})
