"""Retention: old delivery records and measurements are pruned at start-up and periodically on writes;
0 days keeps them forever; the audit log is never pruned. Also: the SQLite file is created owner-only."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from edgeprune.server.app import create_app
from edgeprune.server.db import Database
from edgeprune.server.models import AuditEvent, DeliveryEvent, MeasurementRow, utcnow
from edgeprune.server.settings import ServerSettings
from tests.server._helpers import measurement
from tests.server.conftest import Api, make_api


def _age(api_db: Database, days: float) -> None:
    """Make every delivery record and measurement ``days`` old."""
    old = utcnow() - timedelta(days=days)
    with api_db.write() as s:
        s.query(DeliveryEvent).update({DeliveryEvent.requested_at: old})
        s.query(MeasurementRow).update({MeasurementRow.received_at: old})


def _counts(db: Database) -> tuple[int, int, int]:
    with db.read() as s:
        return tuple(int(s.scalar(select(func.count()).select_from(t)) or 0)  # type: ignore[return-value]
                     for t in (DeliveryEvent, MeasurementRow, AuditEvent))


def _traffic(api: Api, n: int = 3) -> None:
    for _ in range(n):
        assert api.client.get("/api/v1/apps/org.example.app/channels/stable/current",
                              headers=api.device).status_code == 200
        posted = api.client.post("/api/v1/measurements", json=measurement("a" * 64), headers=api.device)
        assert posted.status_code == 201
    api.app.state.edgeprune.deliveries.flush()


def test_retention_prunes_old_rows_at_startup_and_on_writes(settings: ServerSettings) -> None:
    kept = settings.model_copy(update={"delivery_retention_days": 0, "measurement_retention_days": 0})
    gen = make_api(kept)
    api = next(gen)
    api.publish(channel="stable")
    _traffic(api)
    db = api.app.state.edgeprune.db
    _age(db, 400)
    assert api.app.state.edgeprune.retention.prune() is not None
    deliveries, measurements, audits = _counts(db)
    assert (deliveries, measurements) == (3, 3) and audits > 0  # 0 days = keep forever
    gen.close()

    limited = settings.model_copy(update={"delivery_retention_days": 30, "measurement_retention_days": 365})
    app = create_app(limited, on_new_admin_key=lambda key: None)
    with TestClient(app):  # start-up prunes
        assert _counts(app.state.edgeprune.db) == (0, 0, audits)

    gen = make_api(limited.model_copy(update={"retention_interval_minutes": 1 / 600}))  # every 0.1 s
    api = next(gen)
    try:
        db = api.app.state.edgeprune.db
        _traffic(api, 2)
        _age(db, 40)  # deliveries past their 30 days, measurements within their 365
        import time

        time.sleep(0.2)
        _traffic(api, 1)  # the next writes trigger pruning
        deliveries, measurements, _ = _counts(db)
        assert deliveries == 1 and measurements == 3
    finally:
        gen.close()


def test_bad_retention_settings_are_refused(tmp_path: Path) -> None:
    import pytest

    from edgeprune.errors import EdgepruneError

    for env in ({"EDGEPRUNE_DELIVERY_RETENTION_DAYS": "-1"}, {"EDGEPRUNE_RETENTION_INTERVAL_MINUTES": "0"},
                {"EDGEPRUNE_MEASUREMENT_QUOTA_PER_DAY": "many"}, {"EDGEPRUNE_RATE_LIMIT_BURST": "0"}):
        with pytest.raises(EdgepruneError, match="EDGEPRUNE_"):
            ServerSettings.from_env(env, data_dir=tmp_path)
    s = ServerSettings.from_env({"EDGEPRUNE_MEASUREMENT_RETENTION_DAYS": "180"}, data_dir=tmp_path)
    assert s.measurement_retention_days == 180 and s.delivery_retention_days == 90


def test_sqlite_database_file_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "server.db"
    db = Database(f"sqlite:///{path}")
    try:
        db.migrate()
        with db.write() as s:
            s.add(AuditEvent(action="test", target="", detail="{}"))
    finally:
        db.dispose()
    for f in [path, *tmp_path.glob("sub/server.db-*")]:
        assert f.stat().st_mode & 0o777 == 0o600, f
    os.chmod(path, 0o644)  # an existing file with loose permissions is tightened on the next open
    Database(f"sqlite:///{path}").dispose()
    assert path.stat().st_mode & 0o777 == 0o600
