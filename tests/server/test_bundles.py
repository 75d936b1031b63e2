"""Publishing bundles: validation of the upload, content addressing, download with ETag/Range, corruption."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeprune.server.client import EdgepruneClient
from edgeprune.server.settings import ServerSettings
from tests.server._helpers import make_bundle, make_zip, model_json, sha
from tests.server.conftest import Api, make_api


def test_upload_is_content_addressed_and_idempotent(api: Api, settings: ServerSettings) -> None:
    data, doc = make_bundle("retina", "1.2.0")
    first = api.upload(data)
    assert first.status_code == 201
    assert first.json() == {"bundle_sha256": sha(data), "name": "retina", "version": "1.2.0",
                            "size_bytes": len(data), "signature": None}
    again = api.upload(data)
    assert again.status_code == 200 and again.json() == first.json()
    listed = api.client.get("/api/v1/bundles", headers=api.admin).json()
    assert [b["bundle_sha256"] for b in listed] == [sha(data)]
    assert listed[0]["artifacts"][0]["sha256"] == doc["artifacts"][0]["sha256"]
    stored = settings.data_dir / "bundles" / sha(data)[:2] / f"{sha(data)}.zip"
    assert stored.read_bytes() == data
    assert not any((settings.data_dir / "bundles" / ".incoming").iterdir())  # no temp leftovers


def _bad_uploads() -> dict[str, tuple[bytes, int, str]]:
    """name -> (zip bytes, expected status, text expected in the message)."""
    good_files = {"model.tflite": b"fake-model" * 10, "labels.txt": b"a\nb\n"}
    doc = model_json("x", "1", good_files)
    good_json = json.dumps(doc).encode()
    wrong_sha = dict(doc, artifacts=[dict(doc["artifacts"][0], sha256="0" * 64)])
    missing = dict(doc, files=[*doc["files"], {"path": "golden/in.npy", "sha256": "1" * 64, "size_bytes": 3}])
    bad_schema = {k: v for k, v in doc.items() if k != "class_names"}
    cases = {
        "not a zip": (b"this is not a zip file", 400, "not a valid zip"),
        "no model.json": (make_zip(good_files), 422, "no model.json"),
        "model.json not JSON": (make_zip({**good_files, "model.json": b"{nope"}), 422, "not valid JSON"),
        "wrong schema": (make_zip({**good_files, "model.json": json.dumps(bad_schema).encode()}), 422,
                         "class_names"),
        "extra field": (make_zip({**good_files, "model.json": json.dumps({**doc, "surprise": 1}).encode()}), 422,
                        "surprise"),
        "artifact sha mismatch": (make_zip({**good_files, "model.json": json.dumps(wrong_sha).encode()}), 422,
                                  "sha256"),
        "listed file missing": (make_zip({**good_files, "model.json": json.dumps(missing).encode()}), 422,
                                "golden/in.npy"),
    }
    for evil in ("../evil.txt", "/etc/cron.d/evil", "a/../../evil", "C:/evil.txt", "a\\..\\evil", "./x"):
        cases[f"zip-slip {evil}"] = (make_zip({**good_files, "model.json": good_json, evil: b"x"}), 400, "unsafe")
    return cases


@pytest.mark.parametrize("case", list(_bad_uploads()))
def test_bad_bundles_are_rejected_clearly(api: Api, case: str) -> None:
    data, status, text = _bad_uploads()[case]
    resp = api.upload(data)
    assert resp.status_code == status, resp.text
    assert text in resp.json()["detail"]
    assert api.client.get("/api/v1/bundles", headers=api.admin).json() == []


def test_wrong_client_sha256_is_400(api: Api) -> None:
    data, _ = make_bundle()
    resp = api.upload(data, digest="f" * 64)
    assert resp.status_code == 400 and "sha256 mismatch" in resp.json()["detail"]
    assert api.upload(data, digest="not-a-sha").status_code == 422


@pytest.fixture
def small_api(settings: ServerSettings) -> Iterator[Api]:
    """An app with tiny limits: 16 KB bundles, 4 KB JSON bodies."""
    yield from make_api(settings.model_copy(update={"max_bundle_mb": 16 / 1024, "max_request_kb": 4}))


def test_oversized_bundle_is_413(small_api: Api) -> None:
    data, _ = make_bundle(model_bytes=os.urandom(40_000))
    assert len(data) > 16 * 1024
    resp = small_api.upload(data)
    assert resp.status_code == 413 and "limit of 0.015625 MB" in resp.json()["detail"]
    fits, _ = make_bundle(model_bytes=os.urandom(4_000))
    assert small_api.upload(fits).status_code == 201


def test_oversized_json_is_413_with_and_without_content_length(small_api: Api) -> None:
    big = json.dumps({"padding": "x" * 10_000}).encode()
    resp = small_api.client.post("/api/v1/measurements", content=big, headers=small_api.device)
    assert resp.status_code == 413 and "limit of 4 KB" in resp.json()["detail"]

    def chunks() -> Iterator[bytes]:  # chunked transfer: the limit is enforced while reading
        for _ in range(10):
            yield b" " * 1000
    resp = small_api.client.post("/api/v1/measurements", content=chunks(),
                                 headers={**small_api.device, "Content-Type": "application/json"})
    assert resp.status_code == 413 and "limit of 4 KB" in resp.json()["detail"]


def test_download_etag_range_and_resume(api: Api, tmp_path: Path) -> None:
    bundle_sha, _, data = api.publish(model_bytes=os.urandom(3000))
    url = f"/api/v1/bundles/{bundle_sha}/download"
    full = api.client.get(url, headers=api.device)
    assert full.status_code == 200 and full.content == data
    assert full.headers["etag"] == f'"{bundle_sha}"' and full.headers["accept-ranges"] == "bytes"
    assert api.client.get(url, headers={**api.device, "If-None-Match": f'"{bundle_sha}"'}).status_code == 304
    part = api.client.get(url, headers={**api.device, "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    resumed = api.client.get(url, headers={**api.device, "Range": "bytes=100-", "If-Range": f'"{bundle_sha}"'})
    assert resumed.status_code == 206 and resumed.content == data[100:]
    changed = api.client.get(url, headers={**api.device, "Range": "bytes=100-", "If-Range": '"other"'})
    assert changed.status_code == 200 and changed.content == data  # validator changed: send it all
    tail = api.client.get(url, headers={**api.device, "Range": f"bytes={len(data) - 10}-"})
    assert tail.status_code == 206 and tail.content == data[-10:]
    assert api.client.get(url, headers={**api.device, "Range": f"bytes={len(data) + 5}-"}).status_code == 416
    head = api.client.head(url, headers=api.device)
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(data)

    # an interrupted download resumes from its .part file and is verified before it is kept
    dest = tmp_path / "bundle.zip"
    (tmp_path / "bundle.zip.part").write_bytes(data[:1234])
    client = EdgepruneClient("http://testserver", api.device_key, http=api.client)
    client.download(bundle_sha, dest)
    assert dest.read_bytes() == data and not (tmp_path / "bundle.zip.part").exists()


def test_unknown_and_malformed_bundle_ids(api: Api) -> None:
    assert api.client.get(f"/api/v1/bundles/{'a' * 64}/download", headers=api.device).status_code == 404
    assert api.client.get("/api/v1/bundles/..%2F..%2Fetc%2Fpasswd/download", headers=api.device).status_code in (
        404, 422)
    assert api.client.get(f"/api/v1/bundles/{'A' * 64}/download", headers=api.device).status_code == 422


def test_corrupted_file_is_never_served(api: Api, settings: ServerSettings,
                                        caplog: pytest.LogCaptureFixture) -> None:
    bundle_sha, _, data = api.publish()
    path = settings.data_dir / "bundles" / bundle_sha[:2] / f"{bundle_sha}.zip"
    os.chmod(path, 0o644)
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    with caplog.at_level(logging.ERROR, logger="edgeprune.server"):
        resp = api.client.get(f"/api/v1/bundles/{bundle_sha}/download", headers=api.device)
    assert resp.status_code == 500
    assert resp.headers["content-type"].startswith("application/json")
    assert "sha256 check" in resp.json()["detail"]
    assert any("failed its sha256 check" in r.getMessage() for r in caplog.records)
    # re-uploading the good zip repairs the store
    assert api.upload(data).status_code == 200
    assert api.client.get(f"/api/v1/bundles/{bundle_sha}/download", headers=api.device).content == data
