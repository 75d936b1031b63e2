"""`edgeprune signing-key create PATH`: an Ed25519 key pair for signing bundles (private 0600, public beside it)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated

import typer

from edgeprune.cli._common import console, handle_errors

signing_key_app = typer.Typer(no_args_is_help=True, help="Ed25519 keys that sign app bundles.")


@signing_key_app.command("create")
@handle_errors
def signing_key_create(
    path: Annotated[Path, typer.Argument(help="private key file to write, e.g. publisher.pem (kept secret)")],
    force: Annotated[bool, typer.Option("--force", help="replace an existing key pair")] = False,
) -> None:
    """Write a private key PEM (mode 0600) and PATH.pub.pem; print the key id and the raw public key to pin."""
    from edgeprune.package.signing import create_key, load_public_key_raw

    private, public, kid = create_key(path, overwrite=force)
    raw = load_public_key_raw(public)
    console.print(f"[bold]private key[/bold] {private} (mode 600, keep it secret; back it up)", highlight=False,
                  soft_wrap=True)
    console.print(f"[bold]public key[/bold]  {public}", highlight=False, soft_wrap=True)
    console.print(f"key id {kid}", highlight=False)
    console.print(f"public key (base64, pin this in the app and on the server): {base64.b64encode(raw).decode()}",
                  highlight=False, soft_wrap=True)
    console.print(f"Next: edgeprune package RUN_DIR --signing-key {private}", highlight=False, soft_wrap=True)


@signing_key_app.command("show")
@handle_errors
def signing_key_show(
    path: Annotated[Path, typer.Argument(help="public key PEM (or the private key PEM)")],
) -> None:
    """Print the key id and the base64 raw public key of a key file."""
    from edgeprune.package.signing import key_id, load_private_key, load_public_key_raw

    try:
        raw = load_public_key_raw(path)
    except Exception:  # noqa: BLE001 - maybe it is the private key
        from cryptography.hazmat.primitives import serialization

        raw = load_private_key(path).public_key().public_bytes(serialization.Encoding.Raw,
                                                               serialization.PublicFormat.Raw)
    console.print(f"key id {key_id(raw)}", highlight=False)
    console.print(f"public key (base64): {base64.b64encode(raw).decode()}", highlight=False)
