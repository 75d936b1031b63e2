"""Everything the HTML report shows about one run, read from its manifest (and ``compare.json`` if present)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeprune.errors import EdgepruneError
from edgeprune.fsutil import read_json
from edgeprune.pipeline.manifest import Manifest, load_manifest

COMPARE_JSON = "compare.json"
DENSE_CKPT = "models/dense.pt"


@dataclass
class RunView:
    run_dir: Path
    manifest: Manifest
    results: dict[str, dict[str, Any]]
    rows: list[dict[str, Any]]
    compare: list[dict[str, Any]] | None = None
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
        return list(self.results.get("profile", {}).get("measurements", []))

    @property
    def verify(self) -> dict[str, Any]:
        return self.results.get("verify", {})


def _load_compare(run_dir: Path) -> tuple[list[dict[str, Any]] | None, list[str]]:
    path = run_dir / COMPARE_JSON
    if not path.is_file():
        return None, []
    try:
        raw = read_json(path)
    except ValueError as exc:
        return None, [f"{COMPARE_JSON} is not valid JSON ({exc}); bake-off not shown"]
    rows = raw.get("rows") if isinstance(raw, dict) else raw
    if not isinstance(rows, list):
        return None, [f"{COMPARE_JSON} has no list of rows; bake-off not shown"]
    need = ("criterion", "flops_reduction", "balanced_accuracy")
    good = [r for r in rows if isinstance(r, dict) and all(r.get(k) is not None for k in need)]
    notes = [f"{len(rows) - len(good)} row(s) of {COMPARE_JSON} lack {', '.join(need)}"] if len(good) < len(rows) else []
    return good, notes


def load_run(run_dir: str | Path) -> RunView:
    """Read a run directory; a run stopped part-way still loads (missing parts show as 'not run')."""
    from edgeprune.report.json_report import artifact_table

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise EdgepruneError(f"run directory {run_dir} does not exist", "pass a directory written by 'edgeprune build'")
    manifest = load_manifest(run_dir)
    # summaries of stages that finished; a failed/running stage's partial state is not shown
    results = {s.name: s.summary for s in manifest.stages if s.finished_ok}
    compare, notes = _load_compare(run_dir)
    rows = artifact_table(results) if "export" in results else []
    return RunView(run_dir=run_dir, manifest=manifest, results=results, rows=rows, compare=compare,
                   label=manifest.run_id, notes=notes)


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
