"""`edgeprune rebuild`: rerun a finished build from its manifest alone and say, per artifact, whether the result
is bit-identical, within tolerance, or different, and why (tool versions, data, or the first stage whose output
changed: nondeterministic training kernels, converter nondeterminism, ...).

The rebuild goes to ``OUT/<run name>`` (default ``<run dir>.rebuild/<run name>``) because the run name is
embedded in every artifact's metadata: a different name alone would change the bytes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from edgeprune.errors import EdgepruneError
from edgeprune.fsutil import write_json_atomic
from edgeprune.rundir.artifacts import artifact_rows
from edgeprune.rundir.config import config_from_manifest
from edgeprune.rundir.manifest import Manifest, load_manifest

REBUILD_JSON = "rebuild.json"
MIN_AGREEMENT = 0.99  # quantized artifacts: top-1 agreement of the two builds on the test split
MAX_METRIC_DELTA = 0.01  # |delta| of balanced accuracy / accuracy / macro-F1 (fractions)
CHAINS = {"models/finetuned.pt": ["models/dense.pt", "models/pruned.pt", "models/finetuned.pt"],
          "models/dense.pt": ["models/dense.pt"]}


@dataclass
class ArtifactCheck:
    name: str
    verdict: str  # identical | within-tolerance | different | missing
    sha256_original: str | None = None
    sha256_rebuilt: str | None = None
    max_abs_logit_diff: float | None = None
    top1_agreement: float | None = None
    metric_deltas: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)


@dataclass
class RebuildReport:
    original: str
    rebuilt: str
    artifacts: list[ArtifactCheck]
    models: dict[str, dict[str, Any]]
    version_changes: dict[str, list[str | None]]
    data_changes: list[str]

    @property
    def reproducible(self) -> bool:
        return all(a.verdict in ("identical", "within-tolerance") for a in self.artifacts)

    def to_dict(self) -> dict[str, Any]:
        return {"reproducible": self.reproducible, **asdict(self)}


def rebuild_target(run_dir: Path, out: Path | None) -> Path:
    return (Path(out) if out else run_dir.parent / f"{run_dir.name}.rebuild") / run_dir.name


def _version_changes(old: Manifest, new: Manifest) -> dict[str, list[str | None]]:
    keys = sorted(set(old.versions) | set(new.versions))
    return {k: [old.versions.get(k), new.versions.get(k)] for k in keys if old.versions.get(k) != new.versions.get(k)}


def _data_changes(old: Manifest, new: Manifest) -> list[str]:
    out = []
    if old.data.get("source_sha256") != new.data.get("source_sha256"):
        out.append("the dataset file differs from the one recorded (sha256 changed)")
    if old.data.get("calibration_ids") != new.data.get("calibration_ids"):
        out.append("the calibration ids differ")
    old_splits, new_splits = old.reproducibility.get("splits", {}), new.reproducibility.get("splits", {})
    for split, info in old_splits.items():
        if new_splits.get(split, {}).get("sha256") != info.get("sha256"):
            out.append(f"the preprocessed {split} split differs (content fingerprint changed)")
    if not old_splits and old.data.get("sizes") != new.data.get("sizes"):
        out.append("the split sizes differ")
    return out


def _model_diffs(old_dir: Path, new_dir: Path, old: Manifest, new: Manifest) -> dict[str, dict[str, Any]]:
    """Per model file: identical bytes, else identical weights? (torch.save bytes also depend on the file name)."""
    import torch

    old_out, new_out = old.recorded_outputs(), new.recorded_outputs()
    result: dict[str, dict[str, Any]] = {}
    for rel in sorted(r for r in old_out if r.startswith("models/")):
        same = old_out[rel] == new_out.get(rel)
        info: dict[str, Any] = {"bytes_identical": same, "weights_identical": True if same else None}
        if not same and rel.endswith(".pt") and (new_dir / rel).is_file():
            a = torch.load(old_dir / rel, map_location="cpu", weights_only=True)["state_dict"]
            b = torch.load(new_dir / rel, map_location="cpu", weights_only=True)["state_dict"]
            if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
                info.update(weights_identical=False, weights="different architecture (the pruning plan differs)")
            else:
                diff = max((float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].numel()), default=0.0)
                info.update(weights_identical=diff == 0.0, max_weight_diff=diff)
        result[rel] = info
    return result


def _reasons(check: ArtifactCheck, chain: list[str], models: dict[str, dict[str, Any]],
             versions: dict[str, list[str | None]], data: list[str], old: Manifest, new: Manifest) -> list[str]:
    reasons = []
    if versions:
        reasons.append("tool versions differ: " + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in versions.items()))
    reasons += data
    first = next((rel for rel in chain if models.get(rel, {}).get("weights_identical") is False), None)
    if first is not None:
        info = models[first]
        what = info.get("weights") or f"max weight difference {info.get('max_weight_diff', float('nan')):.3g}"
        threads = (old.reproducibility.get("torch_threads"), new.reproducibility.get("torch_threads"))
        why = (f"torch threads {threads[0]} vs {threads[1]}" if threads[0] != threads[1]
               else "floating-point reductions and kernel choice are not bit-deterministic on this host")
        reasons.append(f"{first} already differs ({what}): the stage writing it is not bit-reproducible ({why})")
    elif check.verdict != "identical":
        reasons.append("the checkpoint it was converted from is bit-identical, so the converter output is not "
                       "deterministic (e.g. quantizer calibration order or embedded metadata)")
    return reasons


def _compare_outputs(check: ArtifactCheck, old_file: Path, new_file: Path, fmt: str,
                     x: np.ndarray) -> tuple[float, float]:
    """Run both files on the test inputs; record (and return) max-abs logit difference and top-1 agreement."""
    from edgeprune.metrics import agreement
    from edgeprune.runtimes import open_session

    a = np.asarray(open_session(old_file, fmt=fmt).run(x), dtype=np.float32)
    b = np.asarray(open_session(new_file, fmt=fmt).run(x), dtype=np.float32)
    agree = agreement(a, b)
    check.max_abs_logit_diff, check.top1_agreement = agree["max_abs"], agree["top1_agreement"]
    return agree["max_abs"], agree["top1_agreement"]


def rebuild_run(run_dir: str | Path, out: str | Path | None = None, console: Console | None = None,
                command: list[str] | None = None) -> RebuildReport:
    """Rebuild ``run_dir`` into ``OUT/<run name>`` and compare every artifact with the original."""
    from edgeprune.pipeline.context import BuildContext
    from edgeprune.pipeline.runner import run_build

    run_dir = Path(run_dir)
    old = load_manifest(run_dir)
    unfinished = [s.name for s in old.stages if not s.finished_ok]
    if not old.stages or unfinished:
        raise EdgepruneError(f"{run_dir} is not a finished build (unfinished: {', '.join(unfinished) or 'all'})",
                             "finish it first by rerunning its build command")
    target = rebuild_target(run_dir, Path(out) if out else None)
    if target.exists() and any(target.iterdir()):
        raise EdgepruneError(f"{target} already exists", "pass another --out directory or delete it")
    cfg = config_from_manifest(old).model_copy(update={"out": None})  # the rebuild goes elsewhere
    outcome = run_build(cfg, target, force=True, console=console, command=command or ["edgeprune", "rebuild"])
    new = outcome.manifest
    versions, data = _version_changes(old, new), _data_changes(old, new)
    models = _model_diffs(run_dir, target, old, new)
    old_outcomes = old.outcomes(include_stale=True)
    old_rows = {r["name"]: r for r in artifact_rows(old_outcomes)}
    new_rows = {r["name"]: r for r in outcome.rows}
    exported = {a.name: a for a in old_outcomes.exported}
    test = BuildContext(cfg=cfg, run_dir=target).data.test.read("rebuild: compare old and new artifact outputs")
    x = test.x.numpy()
    checks = []
    for name, o in old_rows.items():
        n = new_rows.get(name)
        check = ArtifactCheck(name=name, verdict="missing", sha256_original=o["sha256"],
                              sha256_rebuilt=n["sha256"] if n else None)
        checks.append(check)
        if n is None:
            check.reasons.append("the rebuild did not produce this artifact")
            continue
        check.metric_deltas = {k: round(n[k] - o[k], 6) for k in ("balanced_accuracy", "accuracy", "macro_f1")
                               if n.get(k) is not None and o.get(k) is not None}
        if o["sha256"] == n["sha256"]:
            check.verdict = "identical"
            check.max_abs_logit_diff, check.top1_agreement = 0.0, 1.0
            continue
        max_abs, top1 = _compare_outputs(check, run_dir / o["file"], target / n["file"], o["format"], x)
        close = max_abs <= cfg.verify.fp32_tolerance if o["precision"] == "fp32" else top1 >= MIN_AGREEMENT
        close = close and all(abs(d) <= MAX_METRIC_DELTA for d in check.metric_deltas.values())
        check.verdict = "within-tolerance" if close else "different"
        chain = CHAINS.get(exported[name].checkpoint if name in exported else "", [])
        check.reasons = _reasons(check, chain, models, versions, data, old, new)
    report = RebuildReport(original=str(run_dir), rebuilt=str(target), artifacts=checks, models=models,
                           version_changes=versions, data_changes=data)
    write_json_atomic(target / REBUILD_JSON, report.to_dict())
    return report
