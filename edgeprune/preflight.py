"""Pre-flight: every name and capability a command will use is resolved before data is loaded or a model trained.

Each check raises ``EdgepruneError(problem, fix)`` (the CLI prints one line, exit 2) and writes nothing. The
capabilities come from declarations on the plugin classes: an Exporter's ``precisions``, ``layouts``,
``io_dtypes``, ``needs_calibration`` and ``requires``; a Device's ``can_time``. The checks that pass but change
what the command will produce (a precision one of several targets lacks, a lane that cannot time) come back
as notes for the caller to show.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from edgeprune.config import (
    MEMORY_DATA,
    BuildConfig,
    ExportConfig,
    ModelConfig,
    ProfileConfig,
    SearchConfig,
    split_criterion,
)
from edgeprune.errors import EdgepruneError, MissingExtraError

if TYPE_CHECKING:
    from edgeprune.export.base import Exporter

# the build's stage order (pipeline.stages.STAGE_NAMES, which imports torch; a test keeps the two equal)
STAGE_ORDER = ("train", "prune", "finetune", "export", "verify", "profile")
__all__ = ["STAGE_ORDER", "check_build", "check_compare", "check_criterion", "check_devices", "check_export",
           "check_model", "io_dtypes_for", "needs_calibration", "stages_until"]


def stages_until(last: str | None) -> tuple[str, ...] | None:
    """The stages a build running up to ``last`` goes through (None for an unknown name: the runner reports it)."""
    if last is None:
        return STAGE_ORDER
    return STAGE_ORDER[: STAGE_ORDER.index(last) + 1] if last in STAGE_ORDER else None


def check_build(cfg: BuildConfig, stages: Collection[str] | None = None) -> list[str]:
    """Check what the given build stages (default: all) need; returns notes on what will be left out.

    The checks that need no torch (targets, devices) run first, so those mistakes fail within a second.
    """
    from edgeprune.data import check_source

    def runs(stage: str) -> bool:
        return stages is None or stage in stages

    notes = check_export(cfg.export) if runs("export") else []
    if runs("profile"):
        notes += check_devices(cfg.profile)
        if runs("export") and cfg.profile.devices and "tflite" not in _formats(cfg.export):
            notes.append("only .tflite files are profiled and no target writes one: the profile stage times nothing")
    check_model(cfg.model)
    check_source(cfg.data.source, cfg.data.dicom_window)
    _check_memory_fit(cfg)
    if runs("prune"):
        check_criterion(cfg.prune.criterion, cfg.prune.options)
        if cfg.prune.latency_reduction:
            check_latency_budget(cfg)
        if cfg.searches():
            notes += check_search(cfg)
        elif cfg.search.enabled and cfg.search != SearchConfig():
            notes.append("a fixed --flops-reduction/--params-reduction was given: no search, its options are ignored")
    return notes


def check_latency_budget(cfg: BuildConfig) -> None:
    """A latency budget: the only budget given, one-shot, and its lane can time (qemu-arm64 cannot)."""
    from edgeprune.budget import budget_kind
    from edgeprune.latency.source import check_latency_source, latency_source

    p = cfg.prune
    budget_kind(p.flops_reduction, p.params_reduction, p.latency_reduction)
    if p.iterative_steps > 1:
        raise EdgepruneError("--latency-reduction is single-shot; it does not take --iterative-steps",
                             "drop --iterative-steps, or use --flops-reduction for gradual pruning")
    check_latency_source(latency_source(cfg))


def check_search(cfg: BuildConfig) -> list[str]:
    """The search (no fixed budget): its criteria, its objective's device, its workers' requirements."""
    from edgeprune.devices import open_device

    s = cfg.search
    for label in s.criteria:
        check_criterion(*split_criterion(label))
    for module, extra in (("optuna", "optuna"),) + ((("ray", "ray"),) if s.ray_address else ()):
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError(module, extra)
    if (s.jobs > 1 or s.ray_address) and (cfg.data.source.startswith(MEMORY_DATA)
                                          or cfg.model.name.startswith("python:")):
        raise EdgepruneError("in-memory data or models cannot be shared with search worker processes",
                             "use jobs=1 without a Ray address, or save the data/model to files")
    if s.objective == "latency" or s.latency_budget_ms is not None:
        if not cfg.profile.devices:
            raise EdgepruneError("the search's latency objective needs a device to time on",
                                 "pass --device host (or --objective macs)")
        spec = cfg.profile.devices[0]
        if not getattr(type(open_device(spec)), "can_time", True):
            raise EdgepruneError(f"the search times its finalists on the first device '{spec}', which cannot time",
                                 "put a timing device first in --device, or use --objective macs")
    return []


def _check_memory_fit(cfg: BuildConfig) -> None:
    """An in-memory model and in-memory data: their class count and input channels must agree now."""
    from edgeprune.data import lookup
    from edgeprune.models import user

    if cfg.data.source.startswith(MEMORY_DATA) and cfg.model.name.startswith(user.MEMORY_PREFIX):
        classes = len(lookup(cfg.data.source).class_names)
        user.check_io(user.memory_entry(cfg.model.name)[0], cfg.model.name, classes, cfg.data.in_channels)


def check_compare(cfg: BuildConfig, labels: list[str]) -> None:
    """The bake-off: the model, the data and each ``name:key=value`` criterion variant."""
    check_build(cfg, stages=("train",))
    if not labels:
        raise EdgepruneError("no criteria to compare", "pass e.g. --criteria l1,random")
    for label in labels:
        name, options = split_criterion(label)
        check_criterion(name, options)


def check_model(model: ModelConfig) -> None:
    """The model spec resolves (zoo name with its options, user file, in-memory module) and weights exist."""
    from edgeprune.models import check_zoo_options, user

    spec = model.name.strip()
    kw = {"width_mult": model.width_mult} if model.width_mult is not None else {}
    if spec.startswith(user.MEMORY_PREFIX):
        user.check_memory_options(spec, model.pretrained, kw)
    elif (file_spec := user.split_user_spec(spec)) is not None:
        user.find_factory(*file_spec)
    elif not spec.startswith(("torchvision:", "monai:")):  # built (and checked) when the run starts
        check_zoo_options(spec, model.pretrained, kw)
    if model.weights:
        user.weights_file(model.weights)


def check_criterion(name: str, options: Mapping[str, Any] | None = None) -> None:
    """The criterion exists and accepts ``options`` (its Options model validates them)."""
    from edgeprune.prune.criteria import create_criterion

    create_criterion(name, **dict(options or {}))


def needs_calibration(exporter: type[Exporter]) -> frozenset[str]:
    """Precisions of an exporter class that need calibration images (its declared capability)."""
    return exporter.needs_calibration


def io_dtypes_for(exporter: type[Exporter], precision: str) -> tuple[str, ...] | None:
    """The I/O dtypes an exporter offers for ``precision``, None when its I/O is fixed float32."""
    return exporter.io_dtype_options.get(precision)


def _exporters(export: ExportConfig) -> dict[str, type]:
    """target name -> exporter class, exactly as the export stage picks them (the backend applies to tflite)."""
    from edgeprune.export import EXPORTERS

    if export.backend and "tflite" not in export.targets:
        raise EdgepruneError(f"backend '{export.backend}' is a tflite backend but tflite is not among the targets "
                             f"({', '.join(export.targets)})", "add tflite to the targets or drop the backend")
    if not export.targets:
        raise EdgepruneError("no export targets", "pass e.g. --target tflite (edgeprune list targets)")
    return {t: EXPORTERS.get(f"{t}:{export.backend}" if t == "tflite" and export.backend else t)
            for t in export.targets}


def _formats(export: ExportConfig) -> set[str]:
    return {cls.format for cls in _exporters(export).values()}


def check_export(export: ExportConfig) -> list[str]:
    """Targets, backend, precisions, layout and I/O dtype resolve to something an exporter will write."""
    exporters = _exporters(export)
    for target, cls in exporters.items():
        for module, extra in cls.requires.items():
            if importlib.util.find_spec(module.split(".")[0]) is None:
                raise MissingExtraError(module, extra)
        if export.io_layout.upper() not in cls.layouts:
            raise EdgepruneError(f"io_layout '{export.io_layout}' is not supported by the {target} target",
                                 f"use one of: {', '.join(x.lower() for x in cls.layouts)}")
    if not export.precisions:
        raise EdgepruneError("no precisions to export", "pass e.g. --precisions fp32,int8")
    notes = []
    for precision in export.precisions:
        takers = [t for t, cls in exporters.items() if precision in cls.precisions]
        if not takers:
            offered = sorted({p for cls in exporters.values() for p in cls.precisions})
            raise EdgepruneError(f"precision '{precision}' is not supported by the target(s) "
                                 f"{', '.join(exporters)}", f"use one of: {', '.join(offered)}")
        notes += [f"{t} has no precision '{precision}': not exported for {t}" for t in exporters if t not in takers]
    if export.io_dtype:
        _check_io_dtype(export, exporters)
    return notes


def _check_io_dtype(export: ExportConfig, exporters: dict[str, type]) -> None:
    used = False
    for target, cls in exporters.items():
        for precision in (p for p in export.precisions if p in cls.precisions):
            allowed = io_dtypes_for(cls, precision)
            if allowed is None:
                continue
            if export.io_dtype not in allowed:
                raise EdgepruneError(f"io_dtype '{export.io_dtype}' is not available for {target} '{precision}'",
                                     f"use one of: {', '.join(allowed)}")
            used = True
    if not used:
        raise EdgepruneError(f"io_dtype '{export.io_dtype}' applies to none of the requested exports (their I/O "
                             "is float32)", "add a full-integer precision such as int8, or drop io_dtype")


def check_devices(profile: ProfileConfig) -> list[str]:
    """Every device spec opens (kind, argument, options) and the benchmark lengths are valid."""
    from edgeprune.devices import BenchSpec, open_device

    BenchSpec(threads=profile.threads or [1], warmup=profile.warmup, runs=profile.runs)
    notes = []
    for spec in profile.devices:
        device = open_device(spec)
        if not getattr(type(device), "can_time", True):
            notes.append(f"device '{spec}' checks parity and op support only: its timings are not reported")
    return notes

