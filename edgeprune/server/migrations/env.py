"""Alembic environment. Normally run in-process by ``edgeprune.server.db.upgrade_to_head``, which passes
an open connection; run by hand, it reads the URL from EDGEPRUNE_DATABASE_URL like the server does."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from edgeprune.server.models import Base

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs batch mode for ALTER
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_standalone() -> None:
    from edgeprune.server.db import Database
    from edgeprune.server.settings import ServerSettings

    db = Database(ServerSettings.from_env().resolved_database_url)
    try:
        with db.write_engine.begin() as connection:
            _run(connection)
    finally:
        db.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run `edgeprune serve` or pass a connection")

shared = config.attributes.get("connection")
if shared is not None:
    _run(shared)
else:
    _run_standalone()
