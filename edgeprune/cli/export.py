"""`edgeprune export RUN_DIR`: (re)convert a run's models to deployment formats."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from edgeprune.cli._common import console, handle_errors, print_summary, split_list


@handle_errors
def export(
    run_dir: Annotated[Path, typer.Argument(help="run directory written by build or prune")],
    target: Annotated[str | None, typer.Option("--target", "-t", help="comma list: tflite,coreml,onnx")] = None,
    precisions: Annotated[str | None, typer.Option("--precisions", help="comma list of precisions")] = None,
    backend: Annotated[str | None, typer.Option("--backend", help="converter backend")] = None,
    io_layout: Annotated[str | None, typer.Option("--io-layout", help="nchw | nhwc")] = None,
    io_dtype: Annotated[
        str | None, typer.Option("--io-dtype", help="float32 | int8 | uint8 I/O of full-int8 files"),
    ] = None,
) -> None:
    """Convert the pruned (and dense) model of RUN_DIR; artifacts go to RUN_DIR/artifacts."""
    from edgeprune.api import export_model

    result = export_model(run_dir, console=console, command=["edgeprune", *sys.argv[1:]], targets=split_list(target),
                          precisions=split_list(precisions), backend=backend, io_layout=io_layout, io_dtype=io_dtype)
    print_summary(result.rows(), run_dir)
    console.print(f"Next: edgeprune verify {run_dir}")
