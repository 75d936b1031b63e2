"""`edgeprune profile MODEL|RUN_DIR --device SPEC`: latency and memory on a device."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from edgeprune.cli._common import console, handle_errors, split_list


@handle_errors
def profile(
    path: Annotated[Path, typer.Argument(help="a .tflite file or a run directory")],
    device: Annotated[str, typer.Option("--device", help="comma list: host, adb[:SERIAL], qemu-arm64, ssh:user@host")] = "host",
    threads: Annotated[str | None, typer.Option("--threads", help="thread counts, e.g. 1,2 (default: 1 and all cores)")] = None,
    warmup: Annotated[int, typer.Option("--warmup", help="untimed runs first")] = 10,
    runs: Annotated[int, typer.Option("--runs", help="timed runs")] = 50,
) -> None:
    """Profile a model file (or every artifact of a run directory) and print a table."""
    from edgeprune.api import profile_model

    measurements = profile_model(path, devices=split_list(device) or ["host"],
                                 threads=[int(t) for t in split_list(threads) or []] or None, warmup=warmup, runs=runs,
                                 console=console)
    table = Table(title="edgeprune profile")
    for col in ("artifact", "device", "threads", "delegate", "p50 ms", "p90 ms", "p99 ms", "init ms", "peak RSS MB"):
        table.add_column(col)
    for m in measurements:
        lat = m.latency
        shown = lat is not None and m.timing_meaningful
        table.add_row(m.artifact_name, f"{m.device.kind}:{m.device.id}", str(m.threads), m.delegate,
                      f"{lat.p50_ms:.3f}" if shown and lat else "n/a", f"{lat.p90_ms:.3f}" if shown and lat else "n/a",
                      f"{lat.p99_ms:.3f}" if shown and lat else "n/a",
                      f"{m.init_ms:.1f}" if shown and m.init_ms is not None else "n/a" if not shown else "-",
                      f"{m.peak_rss_mb:.1f}" if m.peak_rss_mb is not None else "-")
    console.print(table)
    if any(not m.timing_meaningful for m in measurements):
        console.print("[yellow]emulated devices: timings are not meaningful and are not shown[/yellow]")
