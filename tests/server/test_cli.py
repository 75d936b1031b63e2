"""CLI: `edgeprune serve` with no configuration, `edgeprune publish`, `edgeprune keys create`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from edgeprune.cli.keys import keys_app
from edgeprune.cli.publish import publish
from edgeprune.server.db import Database
from edgeprune.server.security import authenticate
from tests.server._helpers import make_bundle, sha
from tests.server.conftest import ADMIN_KEY, LiveServer, free_port

SERVE_APP = "import typer; from edgeprune.cli.serve import serve; a = typer.Typer(); a.command()(serve); a()"


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("EDGEPRUNE_")}


def test_serve_starts_with_no_configuration(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", SERVE_APP, "--port", str(port)], cwd=tmp_path,
                                env=_clean_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline, health = time.monotonic() + 60, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert health is not None and health.status_code == 200, log.read_text()
        assert health.json()["database"] == "sqlite"
        output = log.read_text()
        assert re.findall(r"ep_admin_[A-Za-z0-9_-]{20,}", output) == [], output  # the key is never logged
        key_file = tmp_path / "edgeprune-server-data" / "admin-key.txt"
        assert str(key_file) in output  # only where to find it
        assert key_file.stat().st_mode & 0o777 == 0o600
        keys = re.findall(r"ep_admin_[A-Za-z0-9_-]{20,}", key_file.read_text())
        assert len(keys) == 1  # generated once, written to an owner-only file
        auth = {"Authorization": f"Bearer {keys[0]}"}
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/bundles", headers=auth).json() == []
        assert httpx.get(f"http://127.0.0.1:{port}/dashboard", headers=auth).status_code == 200
        db_file = tmp_path / "edgeprune-server-data" / "edgeprune.db"
        assert db_file.is_file() and keys[0].encode() not in db_file.read_bytes()  # only the hash is stored
        assert db_file.stat().st_mode & 0o777 == 0o600  # the database is owner-only
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command("publish")(publish)
    app.add_typer(keys_app, name="keys")
    return app


def test_publish_run_dir_and_zip(live_server: LiveServer, tmp_path: Path) -> None:
    data, doc = make_bundle("cli-model", "0.1.0")
    run_dir = tmp_path / "run"
    bundle_dir = run_dir / "package" / "bundle"
    bundle_dir.mkdir(parents=True)
    import io
    import zipfile

    zipfile.ZipFile(io.BytesIO(data)).extractall(bundle_dir)
    env = {"EDGEPRUNE_API_KEY": ADMIN_KEY}
    result = CliRunner().invoke(_cli(), ["publish", str(run_dir), "--server", live_server.url, "--channel",
                                         "stable", "--app-id", "org.example.app"], env=env)
    assert result.exit_code == 0, result.output
    assert "published cli-model 0.1.0" in result.output
    current = httpx.get(f"{live_server.url}/api/v1/apps/org.example.app/channels/stable/current",
                        headers=live_server.api.device).json()
    assert current["model_json"] == doc and current["name"] == "cli-model"

    zip_path = tmp_path / "b.zip"
    zip_path.write_bytes(data)
    again = CliRunner().invoke(_cli(), ["publish", str(zip_path), "--server", live_server.url], env=env)
    assert again.exit_code == 0 and sha(data) in again.output


def test_publish_errors_are_one_line(live_server: LiveServer, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"EDGEPRUNE_API_KEY": ADMIN_KEY}
    res = CliRunner().invoke(_cli(), ["publish", str(empty), "--server", live_server.url], env=env)
    assert res.exit_code == 2 and "no bundle (model.json) found" in res.output
    zip_path = tmp_path / "b.zip"
    zip_path.write_bytes(make_bundle()[0])
    res = CliRunner().invoke(_cli(), ["publish", str(zip_path), "--server", live_server.url],
                             env={"EDGEPRUNE_API_KEY": live_server.api.device_key})
    assert res.exit_code == 2 and "403" in res.output and "admin key" in res.output


def test_keys_create_prints_a_working_key_once(database_url: str, tmp_path: Path) -> None:
    db = Database(database_url)
    db.migrate()  # the server has started once on this database
    db.dispose()
    res = CliRunner().invoke(_cli(), ["keys", "create", "--scope", "device", "--label", "lab phone",
                                      "--app-id", "org.example.app",
                                      "--database-url", database_url, "--data-dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    key = res.output.strip().splitlines()[-1]
    db = Database(database_url)
    try:
        info = authenticate(db, key)
        assert info is not None and info.scope == "device" and info.label == "lab phone"
        assert info.app_id == "org.example.app"
    finally:
        db.dispose()


@pytest.mark.parametrize("value", ["s3://bucket/bundles", "https://minio:9000/b"])
def test_object_store_is_reported_unavailable(value: str, tmp_path: Path) -> None:
    from edgeprune.errors import EdgepruneError
    from edgeprune.server.settings import ServerSettings
    from edgeprune.server.storage import make_store

    with pytest.raises(EdgepruneError, match="not available in this build"):
        make_store(ServerSettings(data_dir=tmp_path, bundle_store=value))


def test_settings_from_env_and_flags(tmp_path: Path) -> None:
    from edgeprune.errors import EdgepruneError
    from edgeprune.server.settings import ServerSettings

    env = {"EDGEPRUNE_PORT": "9001", "EDGEPRUNE_MAX_BUNDLE_MB": "5", "EDGEPRUNE_CORS_ORIGINS":
           "https://a.example, http://localhost:3000", "EDGEPRUNE_DASHBOARD_PUBLIC": "true"}
    s = ServerSettings.from_env(env, port=9002, data_dir=tmp_path, host=None)
    assert s.port == 9002 and s.host == "127.0.0.1" and s.max_bundle_bytes == 5 * 1024 * 1024
    assert s.cors_origins == ["https://a.example", "http://localhost:3000"] and s.dashboard_public
    assert s.resolved_database_url.startswith("sqlite:///") and str(tmp_path) in s.resolved_database_url
    for bad in ({"EDGEPRUNE_CORS_ORIGINS": "*"}, {"EDGEPRUNE_ADMIN_KEY": "short"}, {"EDGEPRUNE_PORT": "http"}):
        with pytest.raises(EdgepruneError, match="EDGEPRUNE_"):
            ServerSettings.from_env(bad)
    assert json.loads(s.model_dump_json())["admin_key"] is None


def test_server_never_imports_the_ml_stack() -> None:
    """The container image installs only the [server] extra, so the server must not import torch & co."""
    code = ("import sys, edgeprune.server.__main__, edgeprune.server.client; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'numpy', 'typer', 'matplotlib'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
