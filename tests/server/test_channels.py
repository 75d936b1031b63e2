"""Delivery: channel pointing, current model with ETag/304, rollback by re-pointing, history."""

from __future__ import annotations

from sqlalchemy import select

from edgeprune.server.models import DeliveryEvent
from tests.server.conftest import Api

CH = "/api/v1/apps/org.example.app/channels/stable"


def test_current_model_with_conditional_get(api: Api) -> None:
    bundle_sha, doc, data = api.publish("retina", "1.0.0", channel="stable")
    resp = api.client.get(f"{CH}/current", params={"abi": "arm64-v8a"}, headers=api.device)
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"bundle_sha256", "name", "version", "size_bytes", "download_url", "model_json",
                         "signature"}
    assert body["bundle_sha256"] == bundle_sha and body["size_bytes"] == len(data)
    assert body["download_url"] == f"/api/v1/bundles/{bundle_sha}/download"
    assert body["model_json"] == doc
    assert resp.headers["etag"] == f'"{bundle_sha}"'
    again = api.client.get(f"{CH}/current", headers={**api.device, "If-None-Match": f'"{bundle_sha}"'})
    assert again.status_code == 304 and again.content == b""
    weak = api.client.get(f"{CH}/current", headers={**api.device, "If-None-Match": f'W/"{bundle_sha}"'})
    assert weak.status_code == 304
    stale = api.client.get(f"{CH}/current", headers={**api.device, "If-None-Match": '"0000"'})
    assert stale.status_code == 200
    # the ABI a device sent is recorded (buffered, written in batches)
    api.app.state.edgeprune.deliveries.flush()
    with api.app.state.edgeprune.db.read() as s:
        events = s.scalars(select(DeliveryEvent).order_by(DeliveryEvent.id)).all()
    assert [(e.abi, e.not_modified) for e in events] == [("arm64-v8a", False), ("", True), ("", True), ("", False)]


def test_unknown_app_or_channel_is_404(api: Api) -> None:
    api.publish(channel="stable")
    assert api.client.get("/api/v1/apps/org.example.app/channels/beta/current", headers=api.device).status_code == 404
    assert api.client.get("/api/v1/apps/other.app/channels/stable/current", headers=api.admin).status_code == 404
    # a device key is scoped to its own app: another app's channel is refused whether it exists or not
    assert api.client.get("/api/v1/apps/other.app/channels/stable/current", headers=api.device).status_code == 403
    assert api.client.get("/api/v1/apps/bad%20name/channels/stable/current", headers=api.device).status_code == 422


def test_rollback_by_repointing_keeps_history(api: Api) -> None:
    v1, _, _ = api.publish("retina", "1.0.0", channel="stable")
    v2, _, _ = api.publish("retina", "2.0.0", channel="stable")
    assert api.client.get(f"{CH}/current", headers=api.device).json()["version"] == "2.0.0"
    resp = api.client.put(CH, json={"bundle_sha256": v1}, headers=api.admin)  # rollback
    assert resp.status_code == 200
    assert resp.json()["bundle_sha256"] == v1 and resp.json()["previous_sha256"] == v2
    current = api.client.get(f"{CH}/current", headers={**api.device, "If-None-Match": f'"{v2}"'})
    assert current.status_code == 200 and current.json()["version"] == "1.0.0"  # device on v2 gets v1
    history = api.client.get(f"{CH}/history", headers=api.admin).json()
    assert [(h["bundle_sha256"], h["previous_sha256"]) for h in history] == [(v1, v2), (v2, v1), (v1, None)]
    # pointing at the same bundle again is not a new event
    assert api.client.put(CH, json={"bundle_sha256": v1}, headers=api.admin).status_code == 200
    assert len(api.client.get(f"{CH}/history", headers=api.admin).json()) == 3


def test_bad_channel_requests(api: Api) -> None:
    bundle_sha, _, _ = api.publish()
    assert api.client.put(CH, json={"bundle_sha256": "b" * 64}, headers=api.admin).status_code == 404
    resp = api.client.put(CH, json={"bundle_sha256": "short"}, headers=api.admin)
    assert resp.status_code == 422 and "bundle_sha256" in resp.json()["message"]
    resp = api.client.put(CH, json={"bundle_sha256": bundle_sha, "force": True}, headers=api.admin)
    assert resp.status_code == 422 and "force" in resp.json()["message"]
    assert api.client.put("/api/v1/apps/org.example.app/channels/..", json={"bundle_sha256": bundle_sha},
                          headers=api.admin).status_code in (404, 405, 422)
    assert api.client.get(f"{CH}/history", headers=api.admin).status_code == 404
