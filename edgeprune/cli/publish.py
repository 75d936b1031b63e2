"""`edgeprune publish RUN_DIR_OR_BUNDLE --server URL --channel stable`: upload a bundle to an edgeprune server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeprune.cli._common import console, handle_errors
from edgeprune.errors import EdgepruneError


@handle_errors
def publish(
    path: Annotated[Path, typer.Argument(help="run directory, bundle directory or bundle .zip")],
    server: Annotated[str, typer.Option("--server", envvar="EDGEPRUNE_SERVER", help="e.g. http://127.0.0.1:8000")],
    channel: Annotated[
        str | None, typer.Option("--channel", help="point this channel at the bundle, e.g. stable"),
    ] = None,
    app_id: Annotated[
        str,
        typer.Option(
            "--app-id",
            envvar="EDGEPRUNE_APP_ID",
            help="application id the channel belongs to (the demo app uses edgeprune-demo)",
        ),
    ] = "edgeprune-demo",
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="EDGEPRUNE_API_KEY", help="admin key (prefer the env variable)"),
    ] = None,
) -> None:
    """Check a bundle locally, upload it (sha256 verified by the server) and optionally point a channel at it.

    The local check is the server's own (every zip entry, finite numbers in model.json, signature.json when
    present), so a bad bundle fails here with one line before anything is uploaded."""
    from edgeprune.server.client import EdgepruneClient

    if not api_key:
        raise EdgepruneError("no API key given", "set EDGEPRUNE_API_KEY (or --api-key) to an admin key")
    with EdgepruneClient(server, api_key) as client:
        result = client.publish(path, app_id=app_id, channel=channel)
    sha = result["bundle_sha256"]
    console.print(f"published {result['name']} {result['version']} ({result['size_bytes']} bytes) sha256 {sha}",
                  highlight=False, soft_wrap=True)
    signature = result.get("signature")
    console.print(f"  signed by publisher key {signature['key_id']}" if signature else
                  "  not signed (no signature.json in the bundle)", highlight=False)
    if channel:
        console.print(f"channel {app_id}/{channel} -> {sha[:12]}", highlight=False)
        console.print(f"  devices fetch: {server.rstrip('/')}/api/v1/apps/{app_id}/channels/{channel}/current",
                      highlight=False, soft_wrap=True)
    else:
        channel_url = f"{server.rstrip('/')}/api/v1/apps/{app_id}/channels/stable"
        console.print(f"  point a channel at it: curl -X PUT -H 'Authorization: Bearer $KEY' "
                      f"-d '{{\"bundle_sha256\": \"{sha}\"}}' {channel_url}",
                      highlight=False, soft_wrap=True)
