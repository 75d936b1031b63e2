"""Everything the HTML report shows about one run, read from its manifest (and ``compare.json`` if present)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeprune.errors import EdgepruneError
from edgeprune.fsutil import read_json
from edgeprune.rundir.artifacts import artifact_rows
from edgeprune.rundir.manifest import Manifest, load_manifest
from edgeprune.rundir.outcomes import StageOutcomes
from edgeprune.rundir.paths import COMPARE_JSON, MANIFEST


@dataclass
class RunView:
    run_dir: Path
    manifest: Manifest
    outcomes: StageOutcomes  # of the stages that finished; a failed/running stage's partial state is not shown
    rows: list[dict[str, Any]]
    compare: dict[str, Any] | None = None  # {"rows": [...], "dense_balanced_accuracy", "complete"}
    label: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest.data.get("class_names") or self.manifest.preprocessing.get("class_names") or [])

    def stage_status(self, name: str) -> str:
        record = self.manifest.stage(name)
        return record.status if record else "not run"

    @property
    def measurements(self) -> list[dict[str, Any]]:
        return self.outcomes.measurements


def compare_row(raw: Any) -> dict[str, Any] | None:
    """One bake-off row in the shape the report uses, from either compare.json layout: flat
    ``{criterion, flops_reduction, seed, balanced_accuracy, macro_f1}`` or edgeprune compare's
    ``{criterion, target_reduction, budget, seed, test: {balanced_accuracy, macro_f1, ...}}``."""
    if not isinstance(raw, dict):
        return None
    nested = raw.get("test")
    test: dict[str, Any] = nested if isinstance(nested, dict) else {}
    row = {"criterion": raw.get("criterion"), "seed": raw.get("seed"), "budget": raw.get("budget", "flops"),
           "reduction": raw.get("flops_reduction", raw.get("target_reduction")),
           "balanced_accuracy": raw.get("balanced_accuracy", test.get("balanced_accuracy")),
           "macro_f1": raw.get("macro_f1", test.get("macro_f1"))}
    if row["criterion"] is None or row["reduction"] is None or row["balanced_accuracy"] is None:
        return None
    return row


def _load_compare(run_dir: Path) -> tuple[dict[str, Any] | None, list[str]]:
    path = run_dir / COMPARE_JSON
    if not path.is_file():
        return None, []
    try:
        raw = read_json(path)
    except ValueError as exc:
        return None, [f"{COMPARE_JSON} is not valid JSON ({exc}); bake-off not shown"]
    payload = raw if isinstance(raw, dict) else {"rows": raw}
    rows = payload.get("rows")
    if not isinstance(rows, list):
        return None, [f"{COMPARE_JSON} has no list of rows; bake-off not shown"]
    good = [r for r in (compare_row(x) for x in rows) if r is not None]
    notes = ([f"{len(rows) - len(good)} row(s) of {COMPARE_JSON} lack a criterion, reduction or balanced accuracy"]
             if len(good) < len(rows) else [])
    dense = (payload.get("dense") or {}).get("test", {}).get("balanced_accuracy")
    return {"rows": good, "dense_balanced_accuracy": dense, "complete": payload.get("complete", True)}, notes


def _compare_only_manifest(run_dir: Path) -> Manifest | None:
    """A bake-off directory (compare.json, no build manifest) still gets a report: its bake-off section."""
    path = run_dir / COMPARE_JSON
    if not path.is_file():
        return None
    try:
        payload = read_json(path)
    except ValueError:
        return None
    payload = payload if isinstance(payload, dict) else {}
    return Manifest(run_id=run_dir.name, config=payload.get("config") or {}, versions={},
                    data={"name": payload.get("data"), "class_names": payload.get("class_names") or []})


def load_run(run_dir: str | Path) -> RunView:
    """Read a run directory; a run stopped part-way still loads (missing parts show as 'not run')."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise EdgepruneError(f"run directory {run_dir} does not exist", "pass a directory written by 'edgeprune build'")
    manifest = _compare_only_manifest(run_dir) if not (run_dir / MANIFEST).is_file() else None
    manifest = manifest or load_manifest(run_dir)
    outcomes = manifest.outcomes()
    compare, notes = _load_compare(run_dir)
    return RunView(run_dir=run_dir, manifest=manifest, outcomes=outcomes, rows=artifact_rows(outcomes),
                   compare=compare, label=manifest.run_id, notes=notes)


def unique_labels(runs: list[RunView]) -> None:
    """Give runs with the same directory name distinct labels (parent/name)."""
    seen: dict[str, int] = {}
    for run in runs:
        seen[run.label] = seen.get(run.label, 0) + 1
    for run in runs:
        if seen[run.label] > 1:
            run.label = f"{run.run_dir.parent.name}/{run.run_dir.name}"


def host_latency(row: dict[str, Any]) -> tuple[str, float] | None:
    """The row's comparable host timing: 1 thread if measured, else the fewest threads measured."""
    lat = {k: v for k, v in (row.get("latency_p50_ms") or {}).items() if k.startswith("host:")}
    if not lat:
        return None
    key = "host:1t" if "host:1t" in lat else min(lat, key=lambda k: int(k.split(":")[1].rstrip("t") or 0))
    return key, float(lat[key])
