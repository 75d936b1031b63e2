"""`edgeprune profile MODEL|RUN_DIR --device SPEC`: latency and memory on a device."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from edgeprune.cli._common import console, handle_errors, split_list

COLUMNS = ("artifact", "device", "threads", "delegate", "p50 ms", "p90 ms", "p99 ms", "init ms", "peak RSS MB",
           "model MB", "vs x86 max-abs", "vs x86 top-1")


def _num(value: float | None, fmt: str, shown: bool = True) -> str:
    if not shown:
        return "n/a"
    return "-" if value is None else format(value, fmt)


def measurement_table(measurements: Sequence[Any], title: str = "edgeprune profile") -> Table:
    """One row per Measurement: timings only where they mean something, memory, and an emulated lane's parity."""
    table = Table(title=title)
    for col in COLUMNS:
        table.add_column(col, justify="left" if col in ("artifact", "device", "delegate") else "right")
    for m in measurements:
        lat, par = m.latency, m.parity
        shown = lat is not None and m.timing_meaningful
        table.add_row(m.artifact_name, f"{m.device.kind}:{m.device.id}", str(m.threads), m.delegate,
                      _num(lat.p50_ms if lat else None, ".3f", shown), _num(lat.p90_ms if lat else None, ".3f", shown),
                      _num(lat.p99_ms if lat else None, ".3f", shown), _num(m.init_ms, ".1f", shown),
                      _num(m.peak_rss_mb, ".1f"), _num(m.model_peak_mb, ".1f"),
                      "-" if par is None else f"{par.max_abs:.2e}",
                      "-" if par is None else f"{100 * par.top1_agreement:.1f}% of {par.n}")  # fmt: skip
    return table


def print_measurement_notes(measurements: Sequence[Any]) -> None:
    """What the columns mean for the lanes in this table (one line each)."""
    if any(not m.timing_meaningful for m in measurements):
        console.print("[yellow]emulated devices: timings are not meaningful and are not shown[/yellow]")
    checked = next((m.parity for m in measurements if m.parity is not None), None)
    if checked is not None:
        console.print(f"vs x86: emulated outputs compared with the {checked.reference} runtime on {checked.inputs}")
    if any(m.model_peak_mb is not None for m in measurements):
        console.print("model MB: peak RSS of loading and running the model minus the same process with only the "
                      "runtime imported")


@handle_errors
def profile(
    path: Annotated[Path, typer.Argument(help="a .tflite file or a run directory")],
    device: Annotated[
        str, typer.Option("--device", help="comma list: host, adb[:SERIAL], qemu-arm64, ssh:user@host")
    ] = "host",
    threads: Annotated[
        str | None, typer.Option("--threads", help="thread counts, e.g. 1,2 (default: 1 and all cores)")
    ] = None,
    warmup: Annotated[int, typer.Option("--warmup", help="untimed runs first")] = 10,
    runs: Annotated[int, typer.Option("--runs", help="timed runs")] = 50,
) -> None:
    """Profile a model file (or every artifact of a run directory) and print a table."""
    from edgeprune.api import profile_model

    measurements = profile_model(path, devices=split_list(device) or ["host"],
                                 threads=[int(t) for t in split_list(threads) or []] or None, warmup=warmup, runs=runs,
                                 console=console)
    console.print(measurement_table(measurements))
    print_measurement_notes(measurements)
