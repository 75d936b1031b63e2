"""`edgeprune list models|criteria|targets|devices`: what the registries hold."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from edgeprune.cli._common import console, handle_errors
from edgeprune.errors import EdgepruneError

KINDS = ("models", "criteria", "targets", "devices")


@handle_errors
def list_(
    kind: Annotated[str, typer.Argument(help="models | criteria | targets | devices")],
    pattern: Annotated[str, typer.Option("--filter", help="wildcard filter, e.g. 'resnet*'")] = "*",
) -> None:
    """List the registered models, pruning criteria, export targets or device kinds."""
    if kind not in KINDS:
        import difflib

        close = difflib.get_close_matches(kind, KINDS, n=1)
        raise EdgepruneError(f"cannot list '{kind}'", f"did you mean '{close[0]}'?" if close else f"use one of {KINDS}")
    table = Table(title=f"edgeprune {kind}")
    if kind == "models":
        from edgeprune.models import MODELS

        for col in ("name", "input", "pretrained", "description"):
            table.add_column(col)
        for name, e in MODELS.items():
            if not e.test_only and MODELS.names(pattern).count(name):
                table.add_row(name, str(e.default_input_size), "yes" if e.supports_pretrained else "", e.description)
    elif kind == "criteria":
        from edgeprune.prune.criteria import CRITERIA

        for col in ("name", "kind", "needs", "scope", "options", "summary"):
            table.add_column(col)
        for name in CRITERIA.names(pattern):
            c = CRITERIA.get(name)
            caps = c.capabilities()
            needs = ", ".join(caps["needs"]) or "weights"
            table.add_row(name, caps["kind"], needs, caps["scope"], ", ".join(caps["options"]), c.summary)
    elif kind == "targets":
        from edgeprune.export import EXPORTERS
        from edgeprune.preflight import io_dtypes_for, needs_calibration

        for col in ("target", "format", "backend", "precisions", "layouts", "needs calibration", "io dtypes"):
            table.add_column(col)
        for name in EXPORTERS.names(pattern):
            e = EXPORTERS.get(name)
            dtypes = [f"{p}: {'/'.join(d)}" for p in e.precisions if (d := io_dtypes_for(e, p))]
            table.add_row(name, e.format, e.backend, ", ".join(e.precisions), ", ".join(x.lower() for x in e.layouts),
                          ", ".join(p for p in e.precisions if p in needs_calibration(e)), "; ".join(dtypes))
    else:
        from edgeprune.devices import DEVICES

        for col in ("device kind", "can time", "timing"):
            table.add_column(col)
        for name in DEVICES.names(pattern):
            d = DEVICES.get(name)
            table.add_row(name, "yes" if d.can_time else "no (parity only)", d.timing_note)
    console.print(table)
