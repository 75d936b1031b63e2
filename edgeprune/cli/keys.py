"""`edgeprune keys create|list|revoke`: manage API keys in the server's database (found exactly as `serve`
finds it) or through a running server (--server)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from edgeprune.cli._common import console, handle_errors

if TYPE_CHECKING:
    from edgeprune.server.db import Database

ScopeName = Literal["admin", "device"]
DataDirOpt = Annotated[Path | None, typer.Option(
    help="server data directory, as for `edgeprune serve` [env EDGEPRUNE_DATA_DIR, ./edgeprune-server-data]")]
DatabaseOpt = Annotated[str | None, typer.Option(
    help="server database, as for `edgeprune serve` [env EDGEPRUNE_DATABASE_URL]")]
ServerOpt = Annotated[str | None, typer.Option(
    "--server", help="go through a running server instead (needs --api-key)")]
ApiKeyOpt = Annotated[str | None, typer.Option(
    "--api-key", envvar="EDGEPRUNE_API_KEY", help="admin key for --server")]


def open_server_database(data_dir: Path | None, database_url: str | None) -> Database:
    """The database `edgeprune serve` would use with the same flags/env; never a new empty one.

    Fails with a one-line error when the SQLite file does not exist or the database has no edgeprune schema.
    """
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    from edgeprune.errors import EdgepruneError
    from edgeprune.server.db import Database
    from edgeprune.server.settings import ServerSettings

    settings = ServerSettings.from_env(data_dir=data_dir, database_url=database_url)
    where = ("run this where `edgeprune serve` runs, or pass --data-dir / --database-url "
             "(or EDGEPRUNE_DATA_DIR / EDGEPRUNE_DATABASE_URL) exactly as for `edgeprune serve`")
    path = settings.sqlite_path
    if path is not None and not path.is_file():
        raise EdgepruneError(f"no server database at {path}", where)
    db = Database(settings.resolved_database_url)
    try:
        if not inspect(db.engine).has_table("alembic_version"):
            raise EdgepruneError(f"the database {settings.database_label} has no edgeprune tables",
                                 f"start `edgeprune serve` once with these settings first, or {where}")
        db.migrate()  # the same schema the server would bring it to
    except SQLAlchemyError as exc:
        db.dispose()
        raise EdgepruneError(f"cannot use the database {settings.database_label}: {exc.__class__.__name__}",
                             "check --database-url / EDGEPRUNE_DATABASE_URL and that the database is running") from exc
    except BaseException:
        db.dispose()
        raise
    return db


@handle_errors
def keys_create(
    scope: Annotated[ScopeName, typer.Option(
        "--scope", help="admin (publish, channels, keys, audit) or device (one app: its models + own measurements)")],
    app_id: Annotated[str | None, typer.Option(
        "--app-id", help="the one app a device key may use (required for --scope device)")] = None,
    label: Annotated[str, typer.Option("--label", help="a note to recognise the key by, e.g. 'pixel-8 lab'")] = "",
    expires_in_days: Annotated[float | None, typer.Option(
        "--expires-in-days", help="the key stops working after this many days")] = None,
    server: ServerOpt = None,
    api_key: ApiKeyOpt = None,
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Create a key in the server's database (default) or through a running server (--server)."""
    from edgeprune.errors import EdgepruneError

    if scope == "device" and not app_id:
        raise EdgepruneError("a device key must be scoped to one app",
                             "pass --app-id APP (e.g. --app-id edgeprune-demo)")
    if expires_in_days is not None and not (0 < expires_in_days <= 36_500):  # also refuses nan and inf
        raise EdgepruneError(f"invalid --expires-in-days {expires_in_days}",
                             "give a number of days from 0.001 to 36500")
    if scope == "admin" and app_id:
        raise EdgepruneError("admin keys are not scoped to an app", "leave out --app-id for --scope admin")
    if app_id:
        import re

        from edgeprune.server.schemas import NAME_PATTERN

        if not re.match(NAME_PATTERN, app_id):
            raise EdgepruneError(f"invalid --app-id {app_id!r}", "use 1-128 letters, digits, '.', '_' or '-'")
    if server:
        from edgeprune.server.client import EdgepruneClient

        with EdgepruneClient(server, api_key) as client:
            key = client.create_key(scope, label, app_id=app_id, expires_in_days=expires_in_days)["key"]
    else:
        from edgeprune.server.models import utcnow
        from edgeprune.server.security import create_key

        db = open_server_database(data_dir, database_url)
        try:
            expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
            key, _ = create_key(db, scope, label, app_id=app_id, expires_at=expires, source="cli")
        finally:
            db.dispose()
    console.print(f"new {scope} key{f' for app {app_id}' if app_id else ''} (shown only now, store it safely):",
                  highlight=False)
    typer.echo(key)


@handle_errors
def keys_list(data_dir: DataDirOpt = None, database_url: DatabaseOpt = None) -> None:
    """List keys (never the secrets) from the server's database."""
    from sqlalchemy import select

    from edgeprune.server.models import ApiKey

    db = open_server_database(data_dir, database_url)
    try:
        with db.read() as session:
            rows = session.scalars(select(ApiKey).order_by(ApiKey.id)).all()
    finally:
        db.dispose()
    for r in rows:
        state = "revoked" if r.revoked else (f"expires {r.expires_at:%Y-%m-%d %H:%M}Z" if r.expires_at else "active")
        used = f"last used {r.last_used_at:%Y-%m-%d %H:%M}Z" if r.last_used_at else "never used"
        typer.echo(f"{r.id:>5}  {r.scope:6}  {r.app_id or '-':24}  {state:24}  {used:28}  {r.label}")


@handle_errors
def keys_revoke(key_id: Annotated[int, typer.Argument(help="the key's id (see `edgeprune keys list`)")],
                data_dir: DataDirOpt = None, database_url: DatabaseOpt = None) -> None:
    """Revoke a key for good in the server's database (running servers notice within auth_cache_seconds)."""
    from edgeprune.errors import EdgepruneError
    from edgeprune.server.security import LastAdminKey, revoke_by_id

    db = open_server_database(data_dir, database_url)
    try:
        found = revoke_by_id(db, key_id, None)
    except LastAdminKey as exc:
        raise EdgepruneError(str(exc),
                             "create another admin key first (`edgeprune keys create --scope admin`)") from exc
    finally:
        db.dispose()
    if not found:
        raise EdgepruneError(f"no key with id {key_id}", "see `edgeprune keys list`")
    console.print(f"key {key_id} revoked", highlight=False)


keys_app = typer.Typer(no_args_is_help=True, help="Manage server API keys.")
keys_app.command("create")(keys_create)
keys_app.command("list")(keys_list)
keys_app.command("revoke")(keys_revoke)
