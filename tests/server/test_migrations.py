"""Migrations: applied on a fresh database, idempotent, and matching the ORM models exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from edgeprune.server.db import Database, head_revision
from edgeprune.server.models import Base


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    return str(request.getfixturevalue("pg_cluster").new_database())


def test_migrations_on_a_fresh_database(fresh_url: str) -> None:
    db = Database(fresh_url)
    try:
        assert "api_keys" not in inspect(db.engine).get_table_names()
        assert db.migrate() == head_revision()
        tables = set(inspect(db.engine).get_table_names())
        assert {t.name for t in Base.metadata.sorted_tables} | {"alembic_version"} == tables
        assert db.migrate() == head_revision()  # second start: nothing to do
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
    finally:
        db.dispose()


def test_migrations_ship_without_alembic_ini() -> None:
    from edgeprune.server.db import alembic_config

    cfg = alembic_config()
    assert cfg.config_file_name is None
    assert (Path(cfg.get_main_option("script_location")) / "env.py").is_file()
