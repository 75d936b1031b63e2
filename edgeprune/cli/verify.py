"""`edgeprune verify RUN_DIR`: run every artifact in its runtime and apply the gate."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from edgeprune.cli._common import (
    console,
    fail_if_rejected,
    handle_errors,
    print_summary,
    print_why_no_pruned_model_passes,
)


@handle_errors
def verify(
    run_dir: Annotated[Path, typer.Argument(help="run directory with exported artifacts")],
    max_bal_acc_drop: Annotated[float | None, typer.Option(help="gate: balanced-accuracy drop limit (pp)")] = None,
    max_class_sensitivity_drop: Annotated[float | None, typer.Option(help="gate: per-class drop limit (pp)")] = None,
    no_gate: Annotated[bool, typer.Option("--no-gate", help="report gate failures but exit 0")] = False,
) -> None:
    """Verify RUN_DIR's artifacts on the test split (task metrics, agreement with PyTorch, gate)."""
    from edgeprune.api import verify_model

    result = verify_model(run_dir, console=console, command=["edgeprune", *sys.argv[1:]],
                          max_bal_acc_drop=max_bal_acc_drop, max_class_sensitivity_drop=max_class_sensitivity_drop)
    print_summary(result.rows(), run_dir)
    console.print(f"Next: edgeprune profile {run_dir}")
    print_why_no_pruned_model_passes(result)
    fail_if_rejected(result.rows(), gate=not no_gate)
