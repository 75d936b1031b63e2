"""Engines, sessions and migrations for SQLite (default) and PostgreSQL.

SQLite notes: WAL journal + busy timeout; pysqlite's own transaction handling is switched off so that
SQLAlchemy's BEGIN is real, and write sessions use ``BEGIN IMMEDIATE`` so concurrent writers queue on the
busy timeout instead of failing with "database is locked" when a read lock is upgraded.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from edgeprune.errors import EdgepruneError

SQLITE_BUSY_TIMEOUT_MS = 30_000
_MIGRATION_LOCK_ID = 727_246_118  # arbitrary constant for pg_advisory_xact_lock


def normalize_url(url: str) -> URL:
    """Parse ``url``; plain ``postgresql://`` / ``postgres://`` use the psycopg 3 driver shipped in the extra."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise EdgepruneError(f"cannot parse database URL {url!r}", "use sqlite:///path.db or postgresql://...") from exc
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in {"sqlite", "postgresql"}:
        raise EdgepruneError(f"unsupported database {backend!r}", "use a sqlite:/// or postgresql:// URL")
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise EdgepruneError("an in-memory SQLite database cannot be shared by the server", "give a file path")
    return parsed


def _sqlite_engine(url: URL, begin_sql: str, pool_size: int) -> Engine:
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        pool_size=pool_size,
        max_overflow=pool_size,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin_sql)

    return engine


def private_sqlite_file(path: Path) -> None:
    """Create the SQLite file owner-only (0600) before SQLite does, and tighten an existing one we own.

    SQLite gives its -wal and -shm files the mode of the database file, so they end up 0600 too.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
        return
    except FileExistsError:
        pass
    st = path.stat()
    if st.st_mode & 0o077 and st.st_uid == os.getuid():
        for suffix in ("", "-wal", "-shm"):
            extra = path.with_name(path.name + suffix)
            if extra.exists():
                os.chmod(extra, 0o600)


class Database:
    """Two session factories: ``read()`` (no commit) and ``write()`` (commits, BEGIN IMMEDIATE on SQLite)."""

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url = normalize_url(url)
        self.backend = self.url.get_backend_name()
        if self.backend == "sqlite":
            private_sqlite_file(Path(str(self.url.database)).expanduser().resolve())
            self.engine = _sqlite_engine(self.url, "BEGIN", pool_size)
            self.write_engine = _sqlite_engine(self.url, "BEGIN IMMEDIATE", pool_size)
        else:
            self.engine = create_engine(
                self.url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
            )
            self.write_engine = self.engine
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.write_engine, expire_on_commit=False)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self._write() as session, session.begin():
            yield session

    def ping(self) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT 1")).scalar() == 1

    def migrate(self) -> str:
        """Apply all Alembic migrations (idempotent, safe when several servers start at once)."""
        return upgrade_to_head(self.write_engine)

    def dispose(self) -> None:
        self.engine.dispose()
        if self.write_engine is not self.engine:
            self.write_engine.dispose()


def alembic_config(connection: Any | None = None) -> Any:
    """An Alembic ``Config`` built in code (no alembic.ini), pointing at the packaged migrations."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("edgeprune.server") / "migrations"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade_to_head(engine: Engine) -> str:
    """Upgrade the schema to the newest revision and return it."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_ID})
        command.upgrade(alembic_config(conn), "head")
        revision = MigrationContext.configure(conn).get_current_revision()
    return str(revision)


def head_revision() -> str:
    """The newest migration shipped with this build."""
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(alembic_config()).get_current_head())
