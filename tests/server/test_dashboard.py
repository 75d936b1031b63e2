"""The dashboard shows a published bundle and its posted measurements, with inline plots only."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from edgeprune.server.settings import ServerSettings
from tests.server._helpers import measurement
from tests.server.conftest import Api, make_api


def test_dashboard_compares_builds_across_devices(api: Api) -> None:
    bundle_sha, doc, _ = api.publish("retina-pruned", "3.1.4", channel="stable", accuracy=0.8123)
    art = doc["artifacts"][0]["sha256"]
    for p50 in (11.0, 12.0, 13.0):  # median 12.0 on the pixel
        api.client.post("/api/v1/measurements", json=measurement(art, "pixel-8", p50), headers=api.device)
    api.client.post("/api/v1/measurements", json=measurement(art, "galaxy-a14", 27.5), headers=api.device)
    api.client.post("/api/v1/measurements", headers=api.device,
                    json=measurement(art, "qemu", 99.0, kind="qemu-arm64", timing_meaningful=False))
    resp = api.client.get("/dashboard", headers=api.admin)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    page = resp.text
    assert "retina-pruned 3.1.4 int8" in page and bundle_sha[:12] in page
    assert "org.example.app/stable" in page
    assert "0.812" in page  # balanced accuracy from model.json metrics
    assert "android-app:pixel-8" in page and "android-app:galaxy-a14" in page
    assert "12.00 / 42.5 (3)" in page and "27.50" in page
    assert "emulated" in page and "99.00" not in page  # emulated timings are never shown as latency
    assert page.count("<svg") >= 4
    # no external requests: nothing is loaded from anywhere, and the CSP forbids it anyway
    assert not re.search(r"(src|href)\s*=|@import|url\(", page)
    assert "default-src 'none'" in resp.headers["content-security-policy"]


def test_dashboard_escapes_untrusted_names(api: Api) -> None:
    api.publish("<script>alert(1)</script>", "1")
    page = api.client.get("/dashboard", headers=api.admin).text
    assert "<script>" not in page and "&lt;script&gt;" in page


@pytest.fixture
def public_api(settings: ServerSettings) -> Iterator[Api]:
    yield from make_api(settings.model_copy(update={"dashboard_public": True}))


def test_public_dashboard_is_read_only(public_api: Api) -> None:
    assert public_api.client.get("/dashboard").status_code == 200
    assert public_api.client.get("/api/v1/bundles").status_code == 401
    assert public_api.client.post("/dashboard").status_code == 405
