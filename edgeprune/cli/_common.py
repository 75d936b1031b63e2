"""Shared CLI plumbing: one-line errors, config overrides, the summary table and next steps."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from edgeprune.errors import EdgepruneError

# piped output (CI logs) gets a wide table instead of rich's 80-column default
console = Console(width=None if sys.stdout.isatty() else 150)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 150)
F = TypeVar("F", bound=Callable[..., Any])

EXIT_GATE_FAILED = 3


def handle_errors(fn: F) -> F:
    """User errors become one red line on stderr and their exit code (2; 3 when no model meets the contract),
    never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EdgepruneError as exc:
            err_console.print(f"[bold red]error:[/bold red] {exc.one_line()}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted: rerun the same command to resume from the last finished stage"
                              "[/yellow]")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def split_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1024:.1f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.2f} MB"


def _fmt(v: float | None, pct: bool = True) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.1f}%" if pct else f"{v:.3g}"


SIMULATED_KIND = "linux-structural+simulated-weights"  # edgeprune.runtimes.coreml.SIMULATED (not imported: slow)


def _parity_cell(p: dict[str, Any] | None) -> str:
    if not p:
        return "-"
    diff = "bit-exact" if p["max_abs"] == 0 else f"{p['max_abs']:.1e}"
    return f"{diff} · {100 * p['top1_agreement']:.0f}%"


def _gate_cell(row: dict[str, Any]) -> str:
    """A disabled gate shows 'not checked', never 'pass'; an unverified artifact shows '-'."""
    status = row.get("gate_status")
    if status is None:  # a row of an older report.json
        status = {True: "passed", False: "rejected", None: "not-run"}[row.get("gate_passed")]
    return {"passed": "[green]pass[/green]", "rejected": "[red]REJECTED[/red]",
            "not-checked": "[yellow]not checked[/yellow]"}.get(status, "-")


def print_summary(rows: list[dict[str, Any]], run_dir: Path) -> None:
    """The build's table; memory and emulated-parity columns appear when a lane measured them."""
    table = Table(title=f"edgeprune build: {run_dir}", show_lines=False)
    memory = any(r.get("model_peak_mb") is not None for r in rows)
    parity = next((r["emulated_parity"] for r in rows if r.get("emulated_parity")), None)
    cols = ["artifact", "quantization", "size", "MACs", "p50 latency"] + (["model mem"] if memory else [])
    cols += ([f"{parity['device']} vs x86"] if parity else []) + ["bal. acc", "agree", "gate"]
    for col in cols:
        table.add_column(col, justify="left" if col in ("artifact", "quantization") else "right")
    for r in rows:
        lat = ", ".join(f"{v:.2f}ms@{k.split(':')[-1]}" for k, v in sorted(r["latency_p50_ms"].items())) or "-"
        gate = _gate_cell(r)
        agree = _fmt(r.get("top1_agreement"))
        if r.get("verification_kind") == SIMULATED_KIND:  # Core ML off macOS: no real prediction was run
            agree, gate = f"{agree} simulated", f"{gate} (simulated)"
        macs = f"{r['macs'] / 1e6:.2f}M" if r.get("macs") else "-"
        mem = ["-" if r.get("model_peak_mb") is None else f"{r['model_peak_mb']:.1f} MB"]
        table.add_row(r["name"], r.get("quantization") or "-", human_bytes(r["size_bytes"]), macs, lat,
                      *(mem if memory else []), *([_parity_cell(r.get("emulated_parity"))] if parity else []),
                      _fmt(r.get("balanced_accuracy")), agree, gate)
    console.print(table)
    if memory:
        console.print("model mem: peak RSS of loading and running the model minus the same process with only the "
                      "runtime loaded", style="dim")
    if parity:
        console.print(f"{parity['device']} vs x86: max-abs output difference · top-1 agreement with the x86 runtime "
                      f"on {parity['inputs']} (emulated: numbers, not timings)", style="dim")
    for r in rows:
        reasons = [x for x in r.get("gate_reasons", []) if r.get("gate_passed") is False]
        if reasons:
            more = f" (+{len(reasons) - 1} more in report.html)" if len(reasons) > 1 else ""
            console.print(f"[red]{r['name']}[/red] rejected: {reasons[0]}{more}", soft_wrap=True)


def print_next_steps(run_dir: Path) -> None:
    console.print("\n[bold]Next:[/bold]")
    console.print(f"  edgeprune profile {run_dir}/artifacts/pruned_tflite_int8.tflite --device host")
    console.print(f"  edgeprune verify {run_dir}")
    console.print(f"  cat {run_dir}/report.json")


def print_why_no_pruned_model_passes(result: Any) -> None:
    """Say plainly when the test split is too small for any pruned artifact to pass (a BuildResult)."""
    note = result.why_no_pruned_model_passes
    if note:
        console.print(f"[yellow]{note}[/yellow]", soft_wrap=True, highlight=False)


def fail_if_rejected(rows: list[dict[str, Any]], gate: bool) -> None:
    rejected = [r["name"] for r in rows if r.get("gate_passed") is False]
    if any(r.get("gate_status") == "not-checked" for r in rows):
        console.print("[yellow]gate disabled (verify.gate = false): no artifact was checked against the "
                      "accuracy limits[/yellow]")
    elif not gate and any(r.get("gate_passed") is not None for r in rows):
        console.print("[yellow]--no-gate: the verdicts above are reported but not enforced (exit 0)[/yellow]")
    if rejected and gate:
        err_console.print(f"[bold red]gate failed[/bold red] for {', '.join(rejected)} (use --no-gate to override)")
        sys.stdout.flush()
        raise typer.Exit(EXIT_GATE_FAILED)
