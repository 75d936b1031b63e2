"""Audit log and pagination: admin actions are recorded and readable by admins only; keys, history, bundles
and the audit log page with ``limit`` + an opaque cursor in ``Link: <...>; rel="next"``."""

from __future__ import annotations

from typing import Any

from tests.server._helpers import make_bundle
from tests.server.conftest import APP_ID, Api

AUDIT = "/api/v1/audit"
CH = f"/api/v1/apps/{APP_ID}/channels/stable"


def _walk(api: Api, url: str, limit: int, **params: Any) -> list[list[Any]]:
    """Every page of ``url`` following the Link header."""
    pages: list[list[Any]] = []
    resp = api.client.get(url, params={"limit": limit, **params}, headers=api.admin)
    while True:
        assert resp.status_code == 200, resp.text
        pages.append(resp.json())
        link = resp.headers.get("link")
        if not link:
            return pages
        assert link.endswith('>; rel="next"') and link.startswith("</api/v1/")
        resp = api.client.get(link[1:link.index(">")], headers=api.admin)


def test_admin_actions_are_audited(api: Api) -> None:
    v1, _, _ = api.publish("audited", "1.0.0", channel="stable")
    v2, _, _ = api.publish("audited", "2.0.0", channel="stable")
    assert api.client.put(CH, json={"bundle_sha256": v1}, headers=api.admin).status_code == 200  # rollback
    made = api.client.post("/api/v1/keys", json={"scope": "device", "app_id": APP_ID, "label": "tablet"},
                           headers=api.admin).json()
    assert api.client.delete(f"/api/v1/keys/{made['id']}", headers=api.admin).status_code == 204
    events = api.client.get(AUDIT, headers=api.admin).json()
    actions = [e["action"] for e in events]
    assert actions[:6] == ["key.revoke", "key.create", "channel.move", "channel.move", "bundle.publish",
                           "channel.move"]
    assert events[0]["target"] == f"key/{made['id']}" and events[1]["detail"]["app_id"] == APP_ID
    rollback = events[2]
    assert rollback["target"] == f"{APP_ID}/stable"
    assert rollback["detail"] == {"bundle_sha256": v1, "previous_sha256": v2}
    admin_id = next(k["id"] for k in api.client.get("/api/v1/keys", headers=api.admin).json() if k["source"] == "env")
    assert rollback["key_id"] == admin_id
    publishes = api.client.get(AUDIT, params={"action": "bundle.publish"}, headers=api.admin).json()
    assert [p["detail"]["version"] for p in publishes] == ["2.0.0", "1.0.0"]
    assert api.client.get(AUDIT, headers=api.device).status_code == 403
    assert api.client.get(AUDIT).status_code == 401
    # a re-upload of the same bundle is not a new publish
    assert api.upload(make_bundle("audited", "1.0.0")[0]).status_code == 200
    assert len(api.client.get(AUDIT, params={"action": "bundle.publish"}, headers=api.admin).json()) == 2


def test_pagination_of_keys_audit_history_and_bundles(api: Api) -> None:
    shas = [api.publish("paged", f"1.0.{i}", channel="stable")[0] for i in range(5)]
    for i in range(4):
        api.client.post("/api/v1/keys", json={"scope": "device", "app_id": APP_ID, "label": f"k{i}"},
                        headers=api.admin)
    keys = _walk(api, "/api/v1/keys", 2)
    flat = [k["id"] for page in keys for k in page]
    assert len(keys) == 3 and flat == sorted(flat) and len(flat) == len(set(flat)) == 6  # env + fixture + 4
    history = _walk(api, f"{CH}/history", 2)
    assert [e["bundle_sha256"] for page in history for e in page] == shas[::-1]
    bundles = _walk(api, "/api/v1/bundles", 3)
    assert [len(p) for p in bundles] == [3, 2]
    assert [b["bundle_sha256"] for page in bundles for b in page] == shas[::-1]
    audit = _walk(api, AUDIT, 4)
    ids = [e["id"] for page in audit for e in page]
    assert ids == sorted(ids, reverse=True) and len(ids) == len(set(ids))
    # a device key pages through its app's bundles the same way
    dev = api.client.get("/api/v1/bundles", params={"limit": 4}, headers=api.device)
    assert len(dev.json()) == 4 and "link" in dev.headers


def test_bad_pagination_parameters_are_422(api: Api) -> None:
    api.publish(channel="stable")
    for url in ("/api/v1/keys", AUDIT, f"{CH}/history", "/api/v1/bundles"):
        for params in ({"limit": 0}, {"limit": 1001}, {"limit": "x"}, {"cursor": "!!!"}, {"cursor": "Zm9v"}):
            resp = api.client.get(url, params=params, headers=api.admin)
            assert resp.status_code == 422, (url, params, resp.text)
