"""The public Python API; the `edgeprune` commands parse flags, call these functions and print the result.

Models and data can be objects: an ``nn.Module`` is snapshotted (a deep copy is the factory every stage
rebuilds from, recorded as ``python:<class>@<hash>``) and arrays, torch Datasets or DataLoaders become an
in-memory :class:`~edgeprune.data.ArraySource` (``memory:<name>@<hash>``). Options take the CLI flag names
(``epochs``, ``flops_reduction``, ``precisions``), config field names or dotted keys (``prune.tolerance``).
Every function runs the pre-flight checks first and writes the same run directory and report as the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console

from edgeprune.config import BuildConfig, apply_overrides, load_config, overrides, validate_config
from edgeprune.errors import EdgepruneError
from edgeprune.report.schema import ArtifactRow, ReportJson, validate_report

EXIT_GATE_FAILED = 3
REPORT_JSON = "report.json"


@dataclass(frozen=True)
class Artifact:
    """One exported model file of a run, as report.json describes it."""

    name: str
    path: Path
    format: str
    precision: str
    quantization: str | None
    size_bytes: int
    balanced_accuracy: float | None
    gate_passed: bool | None
    gate_reasons: list[str] = field(default_factory=list)

    @classmethod
    def from_row(cls, run_dir: Path, row: ArtifactRow) -> Artifact:
        return cls(name=row.name, path=run_dir / row.file, format=row.format, precision=row.precision,
                   quantization=row.quantization, size_bytes=row.size_bytes, balanced_accuracy=row.balanced_accuracy,
                   gate_passed=row.gate_passed, gate_reasons=list(row.gate_reasons))


@dataclass(frozen=True)
class BuildResult:
    """What a build (or one stage of it) left in its run directory, read back from report.json."""

    run_dir: Path
    report_path: Path
    report: ReportJson
    artifacts: list[Artifact]
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_run_dir(cls, run_dir: str | Path, notes: Sequence[str] = ()) -> BuildResult:
        run_dir = Path(run_dir)
        path = run_dir / REPORT_JSON
        if not path.is_file():
            raise EdgepruneError(f"{run_dir} has no {REPORT_JSON}", "run edgeprune build into it first")
        from edgeprune.fsutil import read_json

        try:
            report = validate_report(read_json(path))
        except ValidationError as exc:
            raise EdgepruneError(f"{path} does not match the report schema ({exc.errors()[0]['msg']})",
                                 "rerun the build with this edgeprune version") from None
        return cls(run_dir=run_dir, report_path=path, report=report,
                   artifacts=[Artifact.from_row(run_dir, r) for r in report.artifacts], notes=list(notes))

    @property
    def search(self) -> dict[str, Any] | None:
        """The search's trials and chosen one (report.json ``search``); None for a fixed budget."""
        return self.report.search.model_dump() if self.report.search is not None else None

    @property
    def gate_enabled(self) -> bool:
        return self.report.gate.enabled

    @property
    def gate_passed(self) -> bool | None:
        """True/False once artifacts were verified, None when nothing was."""
        return self.report.gate.passed

    @property
    def rejected(self) -> list[str]:
        return list(self.report.gate.rejected)

    @property
    def exit_code(self) -> int:
        """What the CLI exits with: 3 when the enabled gate rejected an artifact, else 0."""
        return EXIT_GATE_FAILED if self.gate_enabled and self.rejected else 0

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    @property
    def why_no_pruned_model_passes(self) -> str | None:
        """The plain reason when every pruned artifact failed on a class the test split cannot certify."""
        from edgeprune.gate import why_no_pruned_model_passes

        power = self.report.gate.power
        return why_no_pruned_model_passes(self.rows(), power.model_dump() if power is not None else None)

    def artifact(self, name: str) -> Artifact:
        found = {a.name: a for a in self.artifacts}
        if name not in found:
            raise EdgepruneError(f"run {self.run_dir} has no artifact '{name}'",
                                 f"it has: {', '.join(found) or 'none'}")
        return found[name]

    def rows(self) -> list[dict[str, Any]]:
        """The artifact rows of report.json as plain dicts (summary tables, JUnit)."""
        return [r.model_dump() for r in self.report.artifacts]


def make_config(config: str | Path | BuildConfig | dict[str, Any] | None = None, **options: Any) -> BuildConfig:
    """A BuildConfig from an edgeprune.toml path, a BuildConfig or a dict, with ``options`` applied on top."""
    changes = overrides(**options)
    if isinstance(config, BuildConfig):
        config = config.model_dump(mode="json")
    if isinstance(config, dict):
        return validate_config(apply_overrides(dict(config), changes), "options")
    return load_config(config, changes)


def run_dir_for(cfg: BuildConfig, out: str | Path | None = None) -> Path:
    """Where a build writes: ``out``, else the config's ``out``, else runs/<run name>."""
    if out is not None:
        return Path(out)
    return Path(cfg.out) if cfg.out else Path("runs") / cfg.run_name()


def run(cfg: BuildConfig, run_dir: str | Path, *, from_stage: str | None = None, to_stage: str | None = None,
        force: bool = False, console: Console | None = None, command: list[str] | None = None) -> BuildResult:
    """Pre-flight, then run (or resume) the build stages into ``run_dir``; the library side of `edgeprune build`."""
    from edgeprune.preflight import check_build, stages_until

    console = console or Console()
    notes = check_build(cfg, stages_until(to_stage))
    for note in notes:
        console.print(f"[yellow]note: {note}[/yellow]", soft_wrap=True)
    # imported after the checks: target or device mistakes fail before torch loads
    from edgeprune.pipeline import run_build

    run_build(cfg, Path(run_dir), from_stage=from_stage, to_stage=to_stage, force=force, console=console,
              command=command or ["edgeprune.api.run"])
    return BuildResult.from_run_dir(run_dir, notes)


def _object_config(model: Any, train: Any, val: Any, test: Any, classes: int | Sequence[str] | None,
                   config: Any, options: dict[str, Any]) -> BuildConfig:
    """Register in-memory model and data, then build the config that names them."""
    from edgeprune.data import ArraySource, register
    from edgeprune.models.user import register_module

    if model is not None:
        options["model"] = model if isinstance(model, str) else register_module(model)
    if train is not None:
        options["data"] = register(ArraySource.from_data(train, val, test, classes))
    elif val is not None or test is not None or classes is not None:
        raise EdgepruneError("val/test data or classes were given without train data",
                             "pass train=(images, labels) as well")
    return make_config(config, **options)


def _with_latency(options: dict[str, Any], latency_reduction: float | None) -> dict[str, Any]:
    return {**options, "latency_reduction": latency_reduction} if latency_reduction is not None else options


def _command(fn: str, options: dict[str, Any]) -> list[str]:
    return [f"edgeprune.{fn}", *(f"{k}={v!r}" for k, v in sorted(options.items()) if k not in ("model", "data"))]


def build(model: Any = None, train: Any = None, val: Any = None, test: Any = None, *,
          classes: int | Sequence[str] | None = None, out: str | Path | None = None,
          config: str | Path | BuildConfig | dict[str, Any] | None = None, from_stage: str | None = None,
          force: bool = False, console: Console | None = None, latency_reduction: float | None = None,
          **options: Any) -> BuildResult:
    """Train (or start from the module's weights with ``epochs=0``), prune, recover, export, verify, profile.

    ``model``: an ``nn.Module``, a zoo name or ``path/to/file.py:factory``. ``train``/``val``/``test``:
    ``(images, labels)`` numpy arrays (uint8 pixels, or floats in 0..1), torch Datasets or DataLoaders; missing
    val/test splits are carved from train. ``classes``: class names or their count. ``options``: the CLI's
    flags by name, e.g. ``epochs=3, flops_reduction=0.5, precisions=["fp32", "int8"]``. ``latency_reduction``:
    a budget of measured latency instead (fraction to remove on ``latency_device``, default the first of
    ``devices``; see docs/latency-model.md).
    """
    options = _with_latency(options, latency_reduction)
    cfg = _object_config(model, train, val, test, classes, config, dict(options))
    return run(cfg, run_dir_for(cfg, out), from_stage=from_stage, force=force, console=console,
               command=_command("build", options))


def prune_model(model: Any = None, train: Any = None, val: Any = None, test: Any = None, *,
                classes: int | Sequence[str] | None = None, out: str | Path | None = None,
                config: str | Path | BuildConfig | dict[str, Any] | None = None, console: Console | None = None,
                latency_reduction: float | None = None, **options: Any) -> BuildResult:
    """Only train/prune/fine-tune (models/finetuned.pt and .pt2), no conversion; same arguments as build."""
    options = _with_latency(options, latency_reduction)
    cfg = _object_config(model, train, val, test, classes, config, dict(options))
    return run(cfg, run_dir_for(cfg, out), to_stage="finetune", console=console,
               command=_command("prune_model", options))


def config_of(run_dir: str | Path, changes: dict[str, Any]) -> BuildConfig:
    """The resolved config of an existing run with ``changes`` (dotted keys) applied."""
    from edgeprune.rundir.config import config_from_manifest
    from edgeprune.rundir.manifest import load_manifest

    return config_from_manifest(load_manifest(Path(run_dir)), changes, f"settings for {run_dir}")


def rerun(run_dir: str | Path, stage: str, *, console: Console | None = None, command: list[str] | None = None,
          **options: Any) -> BuildResult:
    """Rerun one stage of an existing run directory with some settings (flag names) changed."""
    cfg = config_of(run_dir, overrides(**options))
    return run(cfg, run_dir, from_stage=stage, to_stage=stage, console=console,
               command=command or _command(f"rerun:{stage}", options))


def export_model(run_dir: str | Path, *, console: Console | None = None, **options: Any) -> BuildResult:
    """(Re)convert a run's pruned and dense models; options e.g. ``targets=["tflite"], precisions=["int8"]``."""
    return rerun(run_dir, "export", console=console, **options)


def verify_model(run_dir: str | Path, *, console: Console | None = None, **options: Any) -> BuildResult:
    """Verify a run's artifacts in their runtimes and apply the gate (``max_bal_acc_drop=...``)."""
    return rerun(run_dir, "verify", console=console, **options)


def profile_model(path: str | Path, *, devices: Sequence[str] = ("host",), threads: Sequence[int] | None = None,
                  warmup: int = 10, runs: int = 50, console: Console | None = None) -> list[Any]:
    """Time a .tflite file, or every artifact of a run directory, on each device; returns Measurement records."""
    from edgeprune.config import ProfileConfig, default_threads
    from edgeprune.preflight import check_devices
    from edgeprune.schemas import Measurement

    path = Path(path)
    thread_list = list(threads or default_threads())
    if path.is_dir():
        result = rerun(path, "profile", console=console, devices=list(devices), threads=thread_list,
                       warmup=warmup, runs=runs)
        from edgeprune.rundir.manifest import load_manifest

        outcomes = load_manifest(Path(result.run_dir)).outcomes()
        return [Measurement.model_validate(m) for m in outcomes.measurements]
    from edgeprune.pipeline.standalone import profile_file

    check_devices(ProfileConfig(devices=list(devices), threads=thread_list, warmup=warmup, runs=runs))
    return profile_file(path, list(devices), thread_list, warmup, runs)


def check(model: Any = None, train: Any = None, val: Any = None, test: Any = None, *,
          classes: int | Sequence[str] | None = None, config: str | Path | BuildConfig | dict[str, Any] | None = None,
          **options: Any) -> list[str]:
    """Only the pre-flight of :func:`build`: raises EdgepruneError on a problem, returns notes otherwise."""
    from edgeprune.preflight import check_build

    return check_build(_object_config(model, train, val, test, classes, config, dict(options)))


def load_result(run_dir: str | Path) -> BuildResult:
    """The BuildResult of an existing run directory."""
    return BuildResult.from_run_dir(run_dir)
