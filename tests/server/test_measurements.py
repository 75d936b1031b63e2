"""Measurements: the shared schema, idempotent retries, conflicts, validation errors, filtered reads."""

from __future__ import annotations

from sqlalchemy import func, select

from edgeprune.schemas import Measurement
from edgeprune.server.models import MeasurementRow
from tests.server._helpers import measurement
from tests.server.conftest import Api

URL = "/api/v1/measurements"


def _count(api: Api) -> int:
    with api.app.state.edgeprune.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(MeasurementRow)) or 0)


def test_post_is_idempotent_by_id(api: Api) -> None:
    body = measurement("a" * 64, mid="run-1")
    first = api.client.post(URL, json=body, headers=api.device)
    assert first.status_code == 201
    assert Measurement.model_validate(first.json()).id == "run-1"
    retry = api.client.post(URL, json=body, headers=api.device)
    assert retry.status_code == 200 and retry.json() == first.json()
    assert _count(api) == 1
    # a retry that leaves out defaulted fields (created_at) is still the same measurement
    partial = {k: v for k, v in body.items() if k != "created_at"}
    assert api.client.post(URL, json=partial, headers=api.device).status_code == 200
    conflict = api.client.post(URL, json={**body, "threads": 8}, headers=api.device)
    assert conflict.status_code == 409 and "run-1" in conflict.json()["detail"]
    assert _count(api) == 1
    assert api.client.get(f"{URL}/run-1", headers=api.device).json()["threads"] == 4


def test_validation_errors_are_clear(api: Api) -> None:
    good = measurement("a" * 64)
    cases = {
        "missing field": ({k: v for k, v in good.items() if k != "runtime"}, "runtime"),
        "unknown field": ({**good, "colour": "red"}, "colour"),
        "wrong type": ({**good, "threads": "many"}, "threads"),
        "nested": ({**good, "latency": {**good["latency"], "p50_ms": None}}, "latency.p50_ms"),
        "bad id": ({**good, "id": "../../etc"}, "id"),
        "id too long": ({**good, "id": "x" * 300}, "id"),
        "long device kind": ({**good, "device": {**good["device"], "kind": "k" * 100}}, "device.kind"),
    }
    for name, (body, field) in cases.items():
        resp = api.client.post(URL, json=body, headers=api.device)
        assert resp.status_code == 422, name
        assert field in resp.json()["message"], (name, resp.json())
    not_json = api.client.post(URL, content=b"{not json", headers={**api.device, "Content-Type": "application/json"})
    assert not_json.status_code == 422
    assert _count(api) == 0


def test_filters_and_limits(api: Api) -> None:
    a, b = "a" * 64, "b" * 64
    for i in range(3):
        api.client.post(URL, json=measurement(a, device_id=f"p{i}"), headers=api.device)
    api.client.post(URL, json=measurement(b, kind="host"), headers=api.device)
    assert len(api.client.get(URL, headers=api.admin).json()) == 4
    only_a = api.client.get(URL, params={"artifact_sha256": a}, headers=api.admin).json()
    assert len(only_a) == 3 and {m["artifact_sha256"] for m in only_a} == {a}
    hosts = api.client.get(URL, params={"device_kind": "host"}, headers=api.device).json()
    assert [m["artifact_sha256"] for m in hosts] == [b]
    assert len(api.client.get(URL, params={"limit": 2}, headers=api.admin).json()) == 2
    assert api.client.get(URL, params={"limit": 0}, headers=api.admin).status_code == 422
    assert api.client.get(f"{URL}/nope", headers=api.admin).status_code == 404


def test_measurements_of_a_bundle(api: Api) -> None:
    bundle_sha, doc, _ = api.publish()
    art = doc["artifacts"][0]["sha256"]
    api.client.post(URL, json=measurement(art), headers=api.device)
    api.client.post(URL, json=measurement("c" * 64), headers=api.device)
    found = api.client.get(URL, params={"bundle_sha256": bundle_sha}, headers=api.admin).json()
    assert [m["artifact_sha256"] for m in found] == [art]
