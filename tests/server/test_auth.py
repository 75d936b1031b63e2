"""Auth matrix: every endpoint with no key, a wrong key, a device key and an admin key, asserted as a table."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from edgeprune.server.models import ApiKey, MeasurementRow
from edgeprune.server.security import hash_key
from tests.server._helpers import make_bundle, measurement
from tests.server.conftest import ADMIN_KEY, Api

APP = "/api/v1/apps/org.example.app/channels/stable"
CALLERS = ("none", "wrong", "device", "admin")
# (method, route template) -> expected status for each caller
EXPECTED: dict[tuple[str, str], tuple[int, int, int, int]] = {
    ("GET", "/healthz"): (200, 200, 200, 200),
    ("POST", "/api/v1/bundles"): (401, 401, 403, 201),
    ("GET", "/api/v1/bundles"): (401, 401, 200, 200),
    ("GET", "/api/v1/bundles/{sha256}/download"): (401, 401, 200, 200),
    ("HEAD", "/api/v1/bundles/{sha256}/download"): (401, 401, 200, 200),
    ("PUT", "/api/v1/apps/{app_id}/channels/{channel}"): (401, 401, 403, 200),
    ("GET", "/api/v1/apps/{app_id}/channels/{channel}/current"): (401, 401, 200, 200),
    ("GET", "/api/v1/apps/{app_id}/channels/{channel}/history"): (401, 401, 403, 200),
    ("POST", "/api/v1/measurements"): (401, 401, 201, 201),
    ("GET", "/api/v1/measurements"): (401, 401, 200, 200),
    ("GET", "/api/v1/measurements/{measurement_id}"): (401, 401, 200, 200),
    ("POST", "/api/v1/keys"): (401, 401, 403, 201),
    ("GET", "/api/v1/keys"): (401, 401, 403, 200),
    ("DELETE", "/api/v1/keys/{key_id}"): (401, 401, 403, 204),
    ("GET", "/api/v1/audit"): (401, 401, 403, 200),
    ("GET", "/dashboard"): (401, 401, 403, 200),
}


def _app_routes(app: Any) -> set[tuple[str, str]]:
    """Every (method, path) the application serves, from its OpenAPI description."""
    return {(method.upper(), path) for path, ops in app.openapi()["paths"].items() for method in ops}


def test_matrix_covers_every_endpoint(api: Api) -> None:
    assert _app_routes(api.app) == set(EXPECTED), "add new endpoints to the auth matrix"


def test_auth_matrix(api: Api) -> None:
    bundle_sha, _, _ = api.publish(channel="stable")
    stored = measurement(bundle_sha)
    # posted by the device: a device key reads only its own measurements (others: see test_keys_lifecycle)
    assert api.client.post("/api/v1/measurements", json=stored, headers=api.device).status_code == 201
    headers = {"none": {}, "wrong": {"Authorization": "Bearer ep_admin_not-a-real-key-xxxxxxxxxxxxxxxx"},
               "device": api.device, "admin": api.admin}

    def call(method: str, route: str, who: str) -> int:
        h = headers[who]
        url = (route.replace("{sha256}", bundle_sha).replace("{app_id}", "org.example.app")
               .replace("{channel}", "stable").replace("{measurement_id}", stored["id"]))
        if route == "/api/v1/bundles" and method == "POST":
            data, _ = make_bundle("matrix", uuid.uuid4().hex[:8])
            return int(api.upload(data, headers=h).status_code)
        if route == "/api/v1/measurements" and method == "POST":
            return api.client.post(url, json=measurement(bundle_sha), headers=h).status_code
        if method == "PUT":
            return api.client.put(url, json={"bundle_sha256": bundle_sha}, headers=h).status_code
        if route == "/api/v1/keys" and method == "POST":
            body = {"scope": "device", "label": who, "app_id": "org.example.app"}
            return api.client.post(url, json=body, headers=h).status_code
        if method == "DELETE":
            victim = api.client.post("/api/v1/keys", json={"scope": "admin"}, headers=api.admin).json()["id"]
            return api.client.delete(url.replace("{key_id}", str(victim)), headers=h).status_code
        return api.client.request(method, url, headers=h).status_code

    actual = {ep: tuple(call(ep[0], ep[1], who) for who in CALLERS) for ep in EXPECTED}
    table = "\n".join(f"{m:6} {r:55} " + " ".join(f"{s:>6}" for s in actual[(m, r)]) for m, r in EXPECTED)
    print(f"\n{'':6} {'endpoint':55} " + " ".join(f"{c:>6}" for c in CALLERS) + "\n" + table)
    assert actual == EXPECTED


def test_unauthenticated_writes_change_nothing(api: Api) -> None:
    bundle_sha, _, _ = api.publish(channel="stable")
    other, _, _ = api.publish("other", "2.0.0")
    data, _ = make_bundle("sneaky", "9.9.9")
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic " + "eDp5"}):
        assert api.upload(data, headers=headers).status_code == 401
        assert api.client.put(APP, json={"bundle_sha256": other}, headers=headers).status_code == 401
        assert api.client.post("/api/v1/measurements", json=measurement(bundle_sha), headers=headers).status_code == 401
        assert api.client.post("/api/v1/keys", json={"scope": "admin"}, headers=headers).status_code == 401
    # a device key cannot publish or re-point either
    assert api.upload(data, headers=api.device).status_code == 403
    assert api.client.put(APP, json={"bundle_sha256": other}, headers=api.device).status_code == 403
    names = {b["name"] for b in api.client.get("/api/v1/bundles", headers=api.admin).json()}
    assert "sneaky" not in names
    assert api.client.get(f"{APP}/current", headers=api.device).json()["bundle_sha256"] == bundle_sha
    with api.app.state.edgeprune.db.read() as s:
        assert s.scalars(select(MeasurementRow)).all() == []


def test_keys_are_stored_hashed_and_revocable(api: Api) -> None:
    created = api.client.post("/api/v1/keys", json={"scope": "device", "label": "lab", "app_id": "org.example.app"},
                              headers=api.admin).json()
    key = created["key"]
    with api.app.state.edgeprune.db.read() as s:
        rows = s.scalars(select(ApiKey)).all()
    stored = {r.key_hash for r in rows} | {r.label for r in rows}
    assert key not in stored and ADMIN_KEY not in stored  # no key in clear
    assert {hash_key(key), hash_key(ADMIN_KEY)} <= {r.key_hash for r in rows}
    listed = api.client.get("/api/v1/keys", headers=api.admin).json()
    assert all("key" not in item and "key_hash" not in item for item in listed)
    auth = {"Authorization": f"Bearer {key}"}
    assert api.client.get("/api/v1/bundles", headers=auth).status_code == 200
    assert api.client.delete(f"/api/v1/keys/{created['id']}", headers=api.admin).status_code == 204
    assert api.client.get("/api/v1/bundles", headers=auth).status_code == 401


def test_last_admin_key_cannot_be_revoked(api: Api) -> None:
    keys = api.client.get("/api/v1/keys", headers=api.admin).json()
    admin_ids = [k["id"] for k in keys if k["scope"] == "admin" and not k["revoked"]]
    assert len(admin_ids) == 1
    resp = api.client.delete(f"/api/v1/keys/{admin_ids[0]}", headers=api.admin)
    assert resp.status_code == 409 and "last active admin key" in resp.json()["detail"]


def test_dashboard_accepts_basic_auth_but_never_a_query_key(api: Api) -> None:
    import base64

    basic = base64.b64encode(f"anyone:{ADMIN_KEY}".encode()).decode()
    assert api.client.get("/dashboard", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    resp = api.client.get(f"/dashboard?key={ADMIN_KEY}")
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Basic")


def test_cors_is_off_by_default_and_explicit_when_enabled(api: Api, settings: Any) -> None:
    from tests.server.conftest import make_api

    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    resp = api.client.options("/api/v1/measurements", headers=preflight)
    assert "access-control-allow-origin" not in resp.headers
    assert "access-control-allow-origin" not in api.client.get("/healthz", headers={"Origin": "https://x"}).headers
    gen = make_api(settings.model_copy(update={"cors_origins": ["https://lab.example"]}))
    cors_api = next(gen)
    try:
        ok = cors_api.client.options("/api/v1/measurements",
                                     headers={**preflight, "Origin": "https://lab.example"})
        assert ok.headers["access-control-allow-origin"] == "https://lab.example"
        bad = cors_api.client.options("/api/v1/measurements", headers=preflight)
        assert "access-control-allow-origin" not in bad.headers
    finally:
        gen.close()
