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


def test_key_lifecycle_migration_upgrades_data_and_downgrades(fresh_url: str) -> None:
    """0001 -> 0002 keeps rows and backfills (env key source, per-app bundle access, measurement sizes);
    downgrading to 0001 and upgrading again works on both engines."""
    from alembic import command
    from sqlalchemy import text

    from edgeprune.server.db import alembic_config

    db = Database(fresh_url)
    try:
        with db.write_engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0001_initial")
            conn.execute(text(
                "INSERT INTO api_keys (lookup, key_hash, scope, label, created_at, revoked) VALUES "
                "('aaaa', 'a', 'admin', 'EDGEPRUNE_ADMIN_KEY', CURRENT_TIMESTAMP, false), "
                "('bbbb', 'b', 'device', 'phone', CURRENT_TIMESTAMP, false)"))
            conn.execute(text("INSERT INTO bundles (sha256, name, version, size_bytes, model_json, created_at) "
                              "VALUES ('s1', 'm', '1', 1, '{}', CURRENT_TIMESTAMP)"))
            conn.execute(text("INSERT INTO channel_events (app_id, channel, bundle_sha256, changed_at) VALUES "
                              "('app.a', 'stable', 's1', CURRENT_TIMESTAMP), ('app.a', 'beta', 's1', "
                              "CURRENT_TIMESTAMP), ('app.b', 'stable', 'gone', CURRENT_TIMESTAMP)"))
            conn.execute(text(
                "INSERT INTO measurements (id, artifact_sha256, artifact_name, device_kind, device_id, device_model, "
                "timing_meaningful, body, received_at) VALUES ('m1', 'x', 'f', 'k', 'd', '', true, '{\"a\": 1}', "
                "CURRENT_TIMESTAMP)"))
        assert db.migrate() == head_revision()
        with db.engine.connect() as conn:
            assert dict(conn.execute(text("SELECT label, source FROM api_keys")).all()) == {
                "EDGEPRUNE_ADMIN_KEY": "env", "phone": "api"}
            assert conn.execute(text("SELECT bundle_sha256, app_id FROM bundle_apps")).all() == [("s1", "app.a")]
            assert conn.execute(text("SELECT body_bytes FROM measurements")).scalar() == len('{"a": 1}')
        with db.write_engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0001_initial")
        insp = inspect(db.engine)
        assert "audit_events" not in insp.get_table_names() and "bundle_apps" not in insp.get_table_names()
        assert "app_id" not in {c["name"] for c in insp.get_columns("api_keys")}
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM measurements")).scalar() == 1
        assert db.migrate() == head_revision()
    finally:
        db.dispose()
