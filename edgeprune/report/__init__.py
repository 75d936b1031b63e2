"""Build reports: ``report.json`` (stable schema) and one self-contained offline ``report.html``."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_html_report(run_dirs: list[Path], out: Path, **kwargs: Any) -> Path:
    """Render the runs (one, or several for a combined Pareto) into one offline HTML file at ``out``."""
    from edgeprune.report.html import write_html_report as _write

    return _write(run_dirs, out, **kwargs)


__all__ = ["write_html_report"]
