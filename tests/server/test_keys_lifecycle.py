"""Key lifecycle (issue 16): permanent revocation, env-key rotation, expiry, last use, app-scoped device keys,
rate limits (per key and for wrong keys per address), daily measurement quotas, 401 before body parsing.

Every case runs on SQLite and on a real PostgreSQL; every refusal is a clear 4xx that stores nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from edgeprune.server.app import create_app
from edgeprune.server.models import ApiKey, AuditEvent, MeasurementRow, utcnow
from edgeprune.server.security import create_key, hash_key
from edgeprune.server.settings import ServerSettings
from tests.server._helpers import make_bundle, measurement
from tests.server.conftest import ADMIN_KEY, APP_ID, Api, make_api

M = "/api/v1/measurements"
KEYS = "/api/v1/keys"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _count(api: Api, model: Any = MeasurementRow) -> int:
    with api.app.state.edgeprune.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def custom_api(settings: ServerSettings) -> Iterator[Any]:
    """``custom_api(**setting_overrides)`` -> a running Api on the same database; closed at the end."""
    gens: list[Iterator[Api]] = []

    def start(**overrides: Any) -> Api:
        gen = make_api(settings.model_copy(update=overrides))
        gens.append(gen)
        return next(gen)

    yield start
    for gen in reversed(gens):
        gen.close()


def _restart(settings: ServerSettings, **overrides: Any) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update=overrides), on_new_admin_key=lambda key: None)
    with TestClient(app) as client:
        yield client


# --- revocation and rotation --------------------------------------------------------------------------------


def test_revoked_env_admin_key_stays_revoked_after_restart(settings: ServerSettings) -> None:
    for client in _restart(settings):
        second = client.post(KEYS, json={"scope": "admin", "label": "ops"}, headers=bearer(ADMIN_KEY)).json()["key"]
        env_id = next(k["id"] for k in client.get(KEYS, headers=bearer(second)).json() if k["source"] == "env")
        assert client.delete(f"{KEYS}/{env_id}", headers=bearer(second)).status_code == 204
        assert client.get(KEYS, headers=bearer(ADMIN_KEY)).status_code == 401
    for client in _restart(settings):  # same EDGEPRUNE_ADMIN_KEY: the revocation holds
        resp = client.get(KEYS, headers=bearer(ADMIN_KEY))
        assert resp.status_code == 401 and "revoked" in resp.json()["detail"]
        assert client.get(KEYS, headers=bearer(second)).status_code == 200


def test_changing_the_env_admin_key_rotates(settings: ServerSettings) -> None:
    new_key = "rotated-admin-key-" + "x" * 20
    from pydantic import SecretStr
    for client in _restart(settings):
        assert client.get(KEYS, headers=bearer(ADMIN_KEY)).status_code == 200
    for client in _restart(settings, admin_key=SecretStr(new_key)):
        assert client.get(KEYS, headers=bearer(ADMIN_KEY)).status_code == 401  # the old value stopped working
        listed = client.get(KEYS, headers=bearer(new_key)).json()
        env = [k for k in listed if k["source"] == "env"]
        assert [k["revoked"] for k in env] == [True, False]
        revokes = client.get("/api/v1/audit", params={"action": "key.revoke"}, headers=bearer(new_key)).json()
        assert revokes and "rotation" in revokes[0]["detail"]["reason"]
    for client in _restart(settings):  # going back to the old value does not revive it
        assert client.get(KEYS, headers=bearer(ADMIN_KEY)).status_code == 401


def test_no_admin_key_is_generated_while_one_is_usable(settings: ServerSettings) -> None:
    generated: list[str] = []
    for _ in _restart(settings):  # first start: the env key is seeded
        pass
    app = create_app(settings.model_copy(update={"admin_key": None}), on_new_admin_key=generated.append)
    with TestClient(app):
        pass
    assert generated == []  # the env key seeded earlier is still active, even with the variable unset
    app = create_app(settings.model_copy(update={"admin_key": None}), on_new_admin_key=generated.append)
    with TestClient(app) as client:
        assert client.get(KEYS, headers=bearer(ADMIN_KEY)).status_code == 200


# --- expiry and last use ------------------------------------------------------------------------------------


def test_expired_keys_are_refused(api: Api) -> None:
    created = api.client.post(KEYS, json={"scope": "device", "app_id": APP_ID, "expires_in_days": 1},
                              headers=api.admin)
    assert created.status_code == 201 and created.json()["expires_at"]
    key, key_id = created.json()["key"], created.json()["id"]
    assert api.client.get("/api/v1/bundles", headers=bearer(key)).status_code == 200
    with api.app.state.edgeprune.db.write() as s:
        s.execute(update(ApiKey).where(ApiKey.id == key_id).values(expires_at=utcnow() - timedelta(seconds=1)))
    api.app.state.edgeprune.keys.clear()
    resp = api.client.get("/api/v1/bundles", headers=bearer(key))
    assert resp.status_code == 401 and "expired" in resp.json()["detail"]
    before = _count(api, ApiKey)
    for bad in (0, -1, "soon", 1e9):
        resp = api.client.post(KEYS, json={"scope": "device", "app_id": APP_ID, "expires_in_days": bad},
                               headers=api.admin)
        assert resp.status_code == 422, bad
    assert _count(api, ApiKey) == before


def test_cached_key_expires_without_a_lookup(api: Api) -> None:
    key, info = create_key(api.app.state.edgeprune.db, "device", app_id=APP_ID,
                           expires_at=utcnow() + timedelta(seconds=1))
    assert api.client.get("/api/v1/bundles", headers=bearer(key)).status_code == 200  # now cached
    import time

    time.sleep(1.2)
    assert api.client.get("/api/v1/bundles", headers=bearer(key)).status_code == 401


def test_last_used_is_recorded_at_most_once_a_minute(api: Api) -> None:
    key, info = create_key(api.app.state.edgeprune.db, "device", app_id=APP_ID)

    def last_used() -> Any:
        with api.app.state.edgeprune.db.read() as s:
            return s.get(ApiKey, info.id).last_used_at

    assert last_used() is None
    api.client.get("/api/v1/bundles", headers=bearer(key))
    first = last_used()
    assert first is not None and abs((utcnow() - first).total_seconds()) < 60
    api.client.get("/api/v1/bundles", headers=bearer(key))
    assert last_used() == first  # not rewritten within the minute
    listed = {k["id"]: k for k in api.client.get(KEYS, headers=api.admin).json()}
    assert listed[info.id]["last_used_at"] is not None and listed[info.id]["app_id"] == APP_ID


# --- device keys are scoped to one app ----------------------------------------------------------------------


def test_device_key_creation_needs_exactly_one_app(api: Api) -> None:
    before = _count(api, ApiKey)
    cases = [{"scope": "device"}, {"scope": "device", "app_id": "bad app"}, {"scope": "admin", "app_id": APP_ID},
             {"scope": "device", "app_id": APP_ID, "surprise": 1}]
    for body in cases:
        resp = api.client.post(KEYS, json=body, headers=api.admin)
        assert resp.status_code == 422, body
        assert isinstance(resp.json()["detail"], (str, list))
    assert _count(api, ApiKey) == before


def test_device_reads_only_its_apps_bundles_and_channels(api: Api) -> None:
    mine, _, _ = api.publish("mine", "1.0.0", channel="stable")  # uploaded for org.example.app
    data, _ = make_bundle("theirs", "1.0.0")
    theirs = api.upload(data, app_id="other.app", channel="stable").json()["bundle_sha256"]
    unlinked_data, _ = make_bundle("loose", "1.0.0")
    loose = api.upload(unlinked_data, app_id=None).json()["bundle_sha256"]

    listed = api.client.get("/api/v1/bundles", headers=api.device).json()
    assert [b["bundle_sha256"] for b in listed] == [mine]
    assert listed[0]["channels"] == [f"{APP_ID}/stable"]
    assert {b["bundle_sha256"] for b in api.client.get("/api/v1/bundles", headers=api.admin).json()} == {
        mine, theirs, loose}
    assert api.client.get(f"/api/v1/bundles/{mine}/download", headers=api.device).status_code == 200
    for other in (theirs, loose):
        resp = api.client.get(f"/api/v1/bundles/{other}/download", headers=api.device)
        assert resp.status_code == 404 and "zip" not in resp.headers["content-type"]
        assert api.client.head(f"/api/v1/bundles/{other}/download", headers=api.device).status_code == 404
        assert api.client.get(f"/api/v1/bundles/{other}/download", headers=api.admin).status_code == 200
    resp = api.client.get("/api/v1/apps/other.app/channels/stable/current", headers=api.device)
    assert resp.status_code == 403 and APP_ID in resp.json()["detail"]
    assert api.client.get("/api/v1/apps/other.app/channels/stable/current", headers=api.admin).status_code == 200
    # an older bundle a channel of the app pointed at stays readable after the channel moves on (rollback)
    newer, _, _ = api.publish("mine", "2.0.0", channel="stable")
    assert api.client.get(f"/api/v1/bundles/{mine}/download", headers=api.device).status_code == 200
    assert api.client.get(f"/api/v1/bundles/{newer}/download", headers=api.device).status_code == 200


def test_device_reads_only_its_own_measurements(api: Api) -> None:
    other_key, _ = create_key(api.app.state.edgeprune.db, "device", "other phone", app_id=APP_ID)
    other = bearer(other_key)
    mine = measurement("a" * 64, mid="mine-1")
    theirs = measurement("a" * 64, mid="theirs-1", device_id="other")
    assert api.client.post(M, json=mine, headers=api.device).status_code == 201
    assert api.client.post(M, json=theirs, headers=other).status_code == 201
    assert [m["id"] for m in api.client.get(M, headers=api.device).json()] == ["mine-1"]
    assert [m["id"] for m in api.client.get(M, headers=other).json()] == ["theirs-1"]
    assert {m["id"] for m in api.client.get(M, headers=api.admin).json()} == {"mine-1", "theirs-1"}
    assert api.client.get(f"{M}/theirs-1", headers=api.device).status_code == 404
    assert api.client.get(f"{M}/theirs-1", headers=api.admin).status_code == 200
    # re-posting another device's id never reveals its stored body
    resp = api.client.post(M, json=theirs, headers=api.device)
    assert resp.status_code == 409 and "device" not in resp.json() and _count(api) == 2
    with api.app.state.edgeprune.db.read() as s:
        assert s.get(MeasurementRow, "mine-1").app_id == APP_ID


def test_unscoped_legacy_device_key_is_refused(api: Api) -> None:
    legacy = "ep_device_legacy-key-from-before-scoping-0123"
    digest = hash_key(legacy)
    with api.app.state.edgeprune.db.write() as s:
        s.add(ApiKey(lookup=digest[:16], key_hash=digest, scope="device", label="old", revoked=False,
                     created_at=utcnow()))
    resp = api.client.post(M, json=measurement("a" * 64), headers=bearer(legacy))
    assert resp.status_code == 403 and "--app-id" in resp.json()["detail"]
    assert api.client.get("/api/v1/bundles", headers=bearer(legacy)).status_code == 403
    assert _count(api) == 0


# --- 401 before the body is parsed --------------------------------------------------------------------------


def test_unauthenticated_requests_get_401_before_body_parsing(api: Api) -> None:
    junk = {"Content-Type": "application/json"}
    for headers in ({}, {"Authorization": "Bearer wrong-key-wrong-key-wrong"}, {"Authorization": "Basic eDp5"}):
        for url in (M, KEYS, "/api/v1/apps/org.example.app/channels/stable"):
            method = "PUT" if "channels" in url else "POST"
            resp = api.client.request(method, url, content=b"{not json", headers={**headers, **junk})
            assert resp.status_code == 401, (url, headers, resp.text)
            assert resp.headers["www-authenticate"] == "Bearer" and "detail" in resp.json()
    # with a valid key the same body is a validation error
    assert api.client.post(M, content=b"{not json", headers={**api.device, **junk}).status_code == 422
    assert _count(api) == 0


# --- rate limits --------------------------------------------------------------------------------------------


def test_per_key_rate_limit_answers_429_with_retry_after(custom_api: Any) -> None:
    api = custom_api(rate_limit_per_minute=6, rate_limit_burst=3)
    for _ in range(3):
        assert api.client.get("/api/v1/bundles", headers=api.device).status_code == 200
    resp = api.client.post(M, json=measurement("a" * 64), headers=api.device)
    assert resp.status_code == 429 and "rate limit" in resp.json()["detail"]
    assert 1 <= int(resp.headers["retry-after"]) <= 10
    assert _count(api) == 0  # refused before anything was stored
    assert api.client.get("/api/v1/bundles", headers=api.admin).status_code == 200  # other keys unaffected


def test_wrong_key_guesses_are_limited_per_address(custom_api: Any) -> None:
    api = custom_api(auth_failures_per_minute=2, auth_failure_burst=3)
    api.client.get("/api/v1/bundles", headers=api.device)  # verified (and cached) before the attack
    for i in range(3):
        assert api.client.get("/api/v1/bundles", headers=bearer(f"guess-{i}-" + "x" * 30)).status_code == 401
    resp = api.client.get("/api/v1/bundles", headers=bearer("guess-4-" + "x" * 30))
    assert resp.status_code == 429 and int(resp.headers["retry-after"]) >= 1
    assert "failed authentication" in resp.json()["detail"]
    fresh, _ = create_key(api.app.state.edgeprune.db, "device", app_id=APP_ID)
    assert api.client.get("/api/v1/bundles", headers=bearer(fresh)).status_code == 429  # no verification at all
    assert api.client.get("/api/v1/bundles", headers=api.device).status_code == 200  # recently verified key
    other = TestClient(api.app, client=("203.0.113.9", 40000))  # another address is not affected
    assert other.get("/api/v1/bundles", headers=bearer(fresh)).status_code == 200


# --- measurement quota --------------------------------------------------------------------------------------


def test_daily_measurement_count_quota(custom_api: Any) -> None:
    api = custom_api(measurement_quota_per_day=2)
    first = measurement("a" * 64, mid="q-1")
    assert api.client.post(M, json=first, headers=api.device).status_code == 201
    assert api.client.post(M, json=measurement("a" * 64, mid="q-2"), headers=api.device).status_code == 201
    resp = api.client.post(M, json=measurement("a" * 64, mid="q-3"), headers=api.device)
    assert resp.status_code == 429 and "quota" in resp.json()["detail"]
    assert int(resp.headers["retry-after"]) <= 86_400
    assert api.client.post(M, json=first, headers=api.device).status_code == 200  # a retry is still answered
    assert api.client.post(M, json=measurement("a" * 64, mid="q-4"), headers=api.admin).status_code == 201
    assert _count(api) == 3


def test_daily_measurement_byte_quota(custom_api: Any) -> None:
    api = custom_api(measurement_quota_mb_per_day=1500 / 1024 ** 2)
    assert api.client.post(M, json=measurement("a" * 64, mid="b-1"), headers=api.device).status_code == 201
    resp = api.client.post(M, json=measurement("a" * 64, mid="b-2", artifact_name="m" * 400), headers=api.device)
    assert resp.status_code == 429 and "MB per UTC day" in resp.json()["detail"]
    assert _count(api) == 1


# --- CLI: the keys commands use the server's database or fail -----------------------------------------------


def test_keys_commands_never_create_a_new_database(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import typer
    from typer.testing import CliRunner

    from edgeprune.cli.keys import keys_app

    cli = typer.Typer()
    cli.add_typer(keys_app, name="keys")
    monkeypatch.chdir(tmp_path)
    env = {"EDGEPRUNE_DATA_DIR": "", "EDGEPRUNE_DATABASE_URL": ""}
    for args in (["keys", "create", "--scope", "device", "--app-id", "x"], ["keys", "list"], ["keys", "revoke", "1"]):
        res = CliRunner().invoke(cli, args, env=env)
        assert res.exit_code == 2, res.output
        assert "no server database at" in res.output and "--data-dir" in res.output
        assert len(res.output.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
    res = CliRunner().invoke(cli, ["keys", "create", "--scope", "device"], env=env)
    assert res.exit_code == 2 and "--app-id" in res.output


def test_keys_commands_use_the_servers_database(settings: ServerSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    import typer
    from typer.testing import CliRunner

    from edgeprune.cli.keys import keys_app

    cli = typer.Typer()
    cli.add_typer(keys_app, name="keys")
    for _ in _restart(settings):
        pass
    env = {"EDGEPRUNE_DATA_DIR": str(settings.data_dir), "EDGEPRUNE_DATABASE_URL": settings.database_url}
    made = CliRunner().invoke(cli, ["keys", "create", "--scope", "device", "--app-id", APP_ID,
                                    "--expires-in-days", "30"], env=env)
    assert made.exit_code == 0, made.output
    key = made.output.strip().splitlines()[-1]
    listed = CliRunner().invoke(cli, ["keys", "list"], env=env)
    assert listed.exit_code == 0 and APP_ID in listed.output and "expires" in listed.output
    assert key not in listed.output
    for client in _restart(settings):
        assert client.get("/api/v1/bundles", headers=bearer(key)).status_code == 200
        key_id = next(k["id"] for k in client.get(KEYS, headers=bearer(ADMIN_KEY)).json() if k["source"] == "cli")
        assert CliRunner().invoke(cli, ["keys", "revoke", str(key_id)], env=env).exit_code == 0
        client.app.state.edgeprune.keys.clear()  # type: ignore[attr-defined]
        assert client.get("/api/v1/bundles", headers=bearer(key)).status_code == 401
        actions = [e["action"] for e in client.get("/api/v1/audit", headers=bearer(ADMIN_KEY)).json()]
        assert actions[:2] == ["key.revoke", "key.create"]
    res = CliRunner().invoke(cli, ["keys", "revoke", "99999"], env=env)
    assert res.exit_code == 2 and "no key with id 99999" in res.output
    before = CliRunner().invoke(cli, ["keys", "list"], env=env).output
    for bad in (["--expires-in-days", "nan"], ["--expires-in-days", "-1"], ["--app-id", "bad app"], []):
        res = CliRunner().invoke(cli, ["keys", "create", "--scope", "device", *(["--app-id", APP_ID] if bad[:1] == [
            "--expires-in-days"] else []), *bad], env=env)
        assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, (bad, res.output)
    assert CliRunner().invoke(cli, ["keys", "list"], env=env).output == before  # nothing was created


def test_audit_rows_are_not_written_for_refused_actions(api: Api) -> None:
    before = _count(api, AuditEvent)
    assert api.client.post(KEYS, json={"scope": "device"}, headers=api.admin).status_code == 422
    assert api.client.post(KEYS, json={"scope": "admin"}, headers=api.device).status_code == 403
    assert api.client.put("/api/v1/apps/a/channels/b", json={"bundle_sha256": "0" * 64},
                          headers=api.admin).status_code == 404
    assert _count(api, AuditEvent) == before
