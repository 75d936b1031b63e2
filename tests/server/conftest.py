"""Fixtures: every server test runs on SQLite and on a real, throwaway PostgreSQL cluster.

PostgreSQL comes from Debian's ``postgresql`` package: the session fixture runs ``initdb`` + ``pg_ctl`` on a
free loopback port in a temp dir (as the ``postgres`` user when the tests run as root). Each test starts
from an emptied, migrated database; the migration tests use brand-new ones. Without the binaries the
PostgreSQL half is skipped with the reason.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

from fastapi.testclient import TestClient  # noqa: E402

from edgeprune.server.app import create_app  # noqa: E402
from edgeprune.server.security import create_key  # noqa: E402
from edgeprune.server.settings import ServerSettings  # noqa: E402
from tests.server._helpers import make_bundle, sha  # noqa: E402
from tests.server._pg import PostgresUnavailable, ThrowawayPostgres, free_port  # noqa: E402

ADMIN_KEY = "test-admin-key-0123456789abcdef"
APP_ID = "org.example.app"  # the app the fixtures' device keys are scoped to
ENGINES = ["sqlite", "postgresql"]


@dataclass
class PgCluster:
    server: ThrowawayPostgres
    _counter: Any = None
    _shared: str | None = None

    def new_database(self) -> str:
        """A brand-new, empty database."""
        return self.server.create_database(f"edgeprune_test_{next(self._counter)}")

    def clean_database(self) -> str:
        """One migrated database shared by the session, emptied before each test (much faster than a new one)."""
        from sqlalchemy import text

        from edgeprune.server.db import Database
        from edgeprune.server.models import Base

        if self._shared is None:
            self._shared = self.new_database()
        db = Database(self._shared)
        try:
            db.migrate()
            tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
            with db.engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        finally:
            db.dispose()
        return self._shared


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    try:
        server = ThrowawayPostgres()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    with server:
        yield PgCluster(server=server, _counter=itertools.count())


@pytest.fixture(params=ENGINES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'server.db'}"
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    return cluster.clean_database()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> ServerSettings:
    # per-key request rates are off here (the burst tests would trip them); test_keys_lifecycle turns them on
    return ServerSettings(data_dir=tmp_path / "data", database_url=database_url, admin_key=ADMIN_KEY,
                          rate_limit_per_minute=0)


@dataclass
class Api:
    """A running app (TestClient) with an admin and a device key."""

    client: TestClient
    app: Any
    admin: dict[str, str]
    device: dict[str, str]
    device_key: str

    def upload(self, data: bytes, app_id: str | None = "org.example.app", channel: str | None = None,
               digest: str | None = None, headers: dict[str, str] | None = None) -> Any:
        fields = {"sha256": digest or sha(data)}
        if app_id:
            fields["app_id"] = app_id
        if channel:
            fields["channel"] = channel
        return self.client.post("/api/v1/bundles", headers=self.admin if headers is None else headers,
                                data=fields, files={"file": ("bundle.zip", data, "application/zip")})

    def publish(self, name: str = "demo", version: str = "1.0.0", channel: str | None = None,
                **kw: Any) -> tuple[str, dict[str, Any], bytes]:
        data, doc = make_bundle(name, version, **kw)
        resp = self.upload(data, channel=channel)
        assert resp.status_code in (200, 201), resp.text
        return resp.json()["bundle_sha256"], doc, data


def make_api(settings: ServerSettings) -> Iterator[Api]:
    app = create_app(settings, on_new_admin_key=lambda key: None)
    with TestClient(app) as client:
        device_key, _ = create_key(app.state.edgeprune.db, "device", "test device", app_id=APP_ID)
        yield Api(client=client, app=app, admin={"Authorization": f"Bearer {ADMIN_KEY}"},
                  device={"Authorization": f"Bearer {device_key}"}, device_key=device_key)


@pytest.fixture
def api(settings: ServerSettings) -> Iterator[Api]:
    yield from make_api(settings)


@dataclass
class LiveServer:
    url: str
    api: Api


@pytest.fixture
def live_server(settings: ServerSettings) -> Iterator[LiveServer]:
    """The same app served by a real uvicorn on 127.0.0.1 (in a thread)."""
    import uvicorn

    app = create_app(settings, on_new_admin_key=lambda key: None)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           limit_concurrency=500, backlog=512))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    device_key, _ = create_key(app.state.edgeprune.db, "device", "live device", app_id=APP_ID)
    api = Api(client=None, app=app, admin={"Authorization": f"Bearer {ADMIN_KEY}"},  # type: ignore[arg-type]
              device={"Authorization": f"Bearer {device_key}"}, device_key=device_key)
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", api=api)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
