"""`edgeprune report RUN_DIR [RUN_DIR...]`: one offline HTML report (several runs share one Pareto plot)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeprune.cli._common import console, handle_errors


@handle_errors
def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="run directories written by build (one or more)")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="HTML file (default RUN_DIR/report.html, "
                                             "or ./report.html for several runs)")] = None,
) -> None:
    """Write a self-contained report.html (no network needed to view it, phone-friendly)."""
    from edgeprune.report import write_html_report

    target = out or (run_dirs[0] / "report.html" if len(run_dirs) == 1 else Path("report.html"))
    path = write_html_report(list(run_dirs), target)
    console.print(f"Report: {path}  ({path.stat().st_size / 1024:.0f} KB, open it in any browser, works offline)")
