"""`edgeprune package RUN_DIR --app android`: a versioned, checksummed app bundle (directory + zip)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeprune.cli._common import console, handle_errors, human_bytes
from edgeprune.errors import EdgepruneError


def _intended_use(text: str | None, file: Path | None) -> str | None:
    if text is not None and file is not None:
        raise EdgepruneError("both --intended-use and --intended-use-file were given", "pass only one of them")
    if file is None:
        return text
    if not file.is_file():
        raise EdgepruneError(f"intended-use file {file} does not exist", "pass an existing text file")
    return file.read_text(encoding="utf-8")


@handle_errors
def package(
    run_dir: Annotated[Path, typer.Argument(help="run directory written by 'edgeprune build'")],
    app: Annotated[str, typer.Option("--app", help="app kind the bundle is for")] = "android",
    artifact: Annotated[list[str] | None, typer.Option(
        "--artifact",
        help="artifact name to include (repeatable; default: pruned full-int8 + fp32 that passed the gate)",
    )] = None,
    version: Annotated[str | None, typer.Option(help="bundle version (default: date + artifact hash)")] = None,
    name: Annotated[str | None, typer.Option(help="bundle name (default: the run's name)")] = None,
    out: Annotated[Path | None, typer.Option(help="output directory (default RUN_DIR/bundles)")] = None,
    into: Annotated[Path | None, typer.Option(
        help="also copy the bundle here, e.g. apps/android/app/src/main/assets/bundle")] = None,
    golden: Annotated[int, typer.Option(help="golden samples per class (real test images)")] = 2,
    intended_use: Annotated[str | None, typer.Option(help="intended-use text shown by the app")] = None,
    intended_use_file: Annotated[Path | None, typer.Option(help="read the intended-use text from this file")] = None,
    threshold: Annotated[float | None, typer.Option(
        help="binary models: probability threshold of the positive class (default: argmax)")] = None,
    positive_class: Annotated[
        str | None, typer.Option(help="class the --threshold applies to (required with it)"),
    ] = None,
    data: Annotated[str | None, typer.Option(help="the run's dataset, if it moved since the build")] = None,
    force: Annotated[bool, typer.Option("--force", help="package artifacts the accuracy gate rejected")] = False,
    signing_key: Annotated[Path | None, typer.Option(
        "--signing-key", envvar="EDGEPRUNE_SIGNING_KEY",
        help="Ed25519 private key PEM that signs model.json (signature.json); see 'edgeprune signing-key create'",
    )] = None,
) -> None:
    """Bundle RUN_DIR's verified artifacts with labels, preprocessing, metrics and golden samples for an app."""
    from edgeprune.package import build_bundle

    with console.status("packaging (golden samples run in ai-edge-litert)"):
        result = build_bundle(
            run_dir, app=app, artifacts=artifact, version=version, name=name, out=out, into=into,
            golden_per_class=golden, intended_use=_intended_use(intended_use, intended_use_file),
            threshold=threshold, positive_class=positive_class, data=data, force=force, signing_key=signing_key,
        )
    m = result.model_json
    console.print(f"[bold]bundle[/bold] {m.name} {m.version} -> {result.dir}", highlight=False, soft_wrap=True)
    for a in m.artifacts:
        colour = {"passed": "green", "rejected": "red"}.get(a.gate, "yellow")
        console.print(f"  {a.file}  {a.quantization}  {human_bytes(a.size_bytes)}  gate [{colour}]{a.gate}[/{colour}]",
                      highlight=False)
    console.print(f"  {len(m.golden_samples)} golden samples, {len(m.files)} files with sha256", highlight=False)
    if (result.dir / "signature.json").is_file():
        from edgeprune.fsutil import read_json

        console.print(f"  signed with Ed25519 key {read_json(result.dir / 'signature.json')['key_id']}",
                      highlight=False)
    else:
        console.print("  [yellow]not signed[/yellow] (pass --signing-key KEY.pem so apps can check the publisher)",
                      highlight=False)
    console.print(f"[bold]zip[/bold] {result.zip} ({human_bytes(result.zip.stat().st_size)})", highlight=False,
                  soft_wrap=True)
    if result.into is not None:
        console.print(f"[bold]copied into[/bold] {result.into}", highlight=False, soft_wrap=True)
    console.print(f"Next: edgeprune publish {result.zip} --server URL --channel stable", highlight=False,
                  soft_wrap=True)
