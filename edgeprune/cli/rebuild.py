"""`edgeprune rebuild RUN_DIR`: rerun a build from its manifest alone and check it is reproducible."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from edgeprune.cli._common import console, handle_errors

EXIT_NOT_REPRODUCIBLE = 4


@handle_errors
def rebuild(
    run_dir: Annotated[Path, typer.Argument(help="a finished run directory (its manifest.json is all that is used)")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="parent directory of the rebuild "
                                             "(default RUN_DIR.rebuild); it goes to OUT/<run name>")] = None,
) -> None:
    """Rebuild RUN_DIR and report per artifact: bit-identical, within tolerance, or different (and why)."""
    from edgeprune.pipeline.rebuild import REBUILD_JSON, rebuild_run
    from edgeprune.preflight import check_build
    from edgeprune.rundir.config import config_from_manifest
    from edgeprune.rundir.manifest import load_manifest

    check_build(config_from_manifest(load_manifest(run_dir)))  # e.g. a model that was only in memory
    result = rebuild_run(run_dir, out, console=console, command=["edgeprune", *sys.argv[1:]])
    table = Table(title=f"rebuild of {run_dir}")
    for col in ("artifact", "result", "max-abs diff", "top-1 agree", "Δ bal. acc", "why"):
        table.add_column(col, justify="right" if col in ("max-abs diff", "top-1 agree", "Δ bal. acc") else "left")
    style = {"identical": "green", "within-tolerance": "yellow", "different": "red", "missing": "red"}
    for a in result.artifacts:
        delta = a.metric_deltas.get("balanced_accuracy")
        table.add_row(a.name, f"[{style[a.verdict]}]{a.verdict}[/{style[a.verdict]}]",
                      "-" if a.max_abs_logit_diff is None else f"{a.max_abs_logit_diff:.3g}",
                      "-" if a.top1_agreement is None else f"{100 * a.top1_agreement:.2f}%",
                      "-" if delta is None else f"{100 * delta:+.2f} pp", "; ".join(a.reasons) or "-")
    console.print(table)
    console.print(f"Rebuild: {result.rebuilt}  (details in {REBUILD_JSON})")
    if not result.reproducible:
        console.print("[red]not reproducible within tolerance[/red]")
        raise typer.Exit(EXIT_NOT_REPRODUCIBLE)
