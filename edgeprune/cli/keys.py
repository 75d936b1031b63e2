"""`edgeprune keys create --scope admin|device`: make an API key and print it once (only its hash is stored)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from edgeprune.cli._common import console, handle_errors

ScopeName = Literal["admin", "device"]


@handle_errors
def keys_create(
    scope: Annotated[ScopeName, typer.Option("--scope", help="admin (publish, channels, keys) or device (measurements, downloads)")],
    label: Annotated[str, typer.Option("--label", help="a note to recognise the key by, e.g. 'pixel-8 lab'")] = "",
    server: Annotated[str | None, typer.Option("--server", help="create it through a running server (needs --api-key)")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="EDGEPRUNE_API_KEY", help="admin key for --server")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="server data directory [env EDGEPRUNE_DATA_DIR]")] = None,
    database_url: Annotated[str | None, typer.Option(help="server database [env EDGEPRUNE_DATABASE_URL]")] = None,
) -> None:
    """Create a key directly in the server's database (default) or through a running server (--server)."""
    if server:
        from edgeprune.server.client import EdgepruneClient

        with EdgepruneClient(server, api_key) as client:
            key = client.create_key(scope, label)["key"]
    else:
        from sqlalchemy.exc import SQLAlchemyError

        from edgeprune.errors import EdgepruneError
        from edgeprune.server.db import Database
        from edgeprune.server.security import create_key
        from edgeprune.server.settings import ServerSettings

        settings = ServerSettings.from_env(data_dir=data_dir, database_url=database_url)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url)
        try:
            db.migrate()
            key, _ = create_key(db, scope, label)
        except SQLAlchemyError as exc:
            raise EdgepruneError(f"cannot write to the database {settings.database_label}: {exc.__class__.__name__}",
                                 "check --database-url / EDGEPRUNE_DATABASE_URL") from exc
        finally:
            db.dispose()
    console.print(f"new {scope} key (shown only now, store it safely):", highlight=False)
    typer.echo(key)


keys_app = typer.Typer(no_args_is_help=True, help="Manage server API keys.")
keys_app.command("create")(keys_create)
