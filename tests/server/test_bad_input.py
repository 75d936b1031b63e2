"""Bad input at the API boundary, on SQLite and on a real PostgreSQL (issue 16, items 1, 3, 4 and 7).

Every case gives a clear 4xx with nothing stored, or a correct 2xx: non-finite numbers in measurements
and in model.json, rows stored before numbers were checked, hostile zips (bombs, two names for one entry,
NUL and control characters, unlisted entries, lying headers), signatures and publisher keys, RFC 9110
Range, the database going away, crashed uploads, and hashing once per stored file.
"""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from edgeprune.server.models import Bundle, MeasurementRow
from edgeprune.server.settings import ServerSettings
from tests.server._helpers import make_bundle, measurement, sha
from tests.server._zips import RawEntry, build_zip, bundle_entries, entry, local_only, sign, zero_bomb
from tests.server.conftest import Api, make_api

URL = "/api/v1/measurements"


def _strict_json(text: str) -> Any:
    """Parse as standard JSON: NaN/Infinity are not JSON and fail here."""
    def refuse(name: str) -> Any:
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def _count(api: Api, table: Any) -> int:
    with api.app.state.edgeprune.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def _nothing_stored(api: Api, settings: ServerSettings) -> None:
    assert api.client.get("/api/v1/bundles", headers=api.admin).json() == []
    store = settings.data_dir / "bundles"
    assert not [p for p in store.rglob("*") if p.is_file()], "no zip, sidecar or temp file may be left"


# --- 1. numbers are finite or refused -------------------------------------------------------------------

def _raw_measurement(replace: str, by: str) -> bytes:
    """A measurement body as text, with one JSON number replaced by ``by`` (json.dumps cannot write 1e400)."""
    body = json.dumps(measurement("a" * 64, p50=5.0, mid="m-1", extra={"temp": {"values": [1.5, 2.5]}}))
    assert replace in body
    return body.replace(replace, by, 1).encode()


BAD_NUMBERS = {
    "NaN latency": ('"p50_ms": 5.0', '"p50_ms": NaN', "latency.p50_ms"),
    "Infinity rss": ('"peak_rss_mb": 42.5', '"peak_rss_mb": Infinity', "peak_rss_mb"),
    "-Infinity min": ('"min_ms": 4.5', '"min_ms": -Infinity', "latency.min_ms"),
    "1e400 overflow": ('"p90_ms": 6.5', '"p90_ms": 1e400', "latency.p90_ms"),
    "nested extra": ('[1.5, 2.5]', '[1.5, NaN]', "extra.temp.values[1]"),
    "int field 1e400": ('"threads": 4', '"threads": 1e400', "threads"),
    "int beyond 64 bits": ('"threads": 4', '"threads": 123456789012345678901234567890', "threads"),
    "device extra field": ('"abi": "arm64-v8a"', '"abi": "arm64-v8a", "battery": -1e999', "device"),
}


@pytest.mark.parametrize("case", list(BAD_NUMBERS))
def test_non_finite_measurement_numbers_are_422_and_not_stored(api: Api, case: str) -> None:
    replace, by, field = BAD_NUMBERS[case]
    resp = api.client.post(URL, content=_raw_measurement(replace, by),
                           headers={**api.device, "Content-Type": "application/json"})
    assert resp.status_code == 422, resp.text
    assert field in resp.json()["message"] and "finite" in resp.json()["message"]
    assert _count(api, MeasurementRow) == 0
    assert api.client.get(URL, headers=api.device).json() == []
    assert api.client.get(f"{URL}/m-1", headers=api.device).status_code == 404
    good = api.client.post(URL, content=_raw_measurement('"p50_ms": 5.0', '"p50_ms": 0'),
                           headers={**api.device, "Content-Type": "application/json"})
    assert good.status_code == 201 and good.json()["latency"]["p50_ms"] == 0  # finite edge values are fine


def _insert_bad_rows(api: Api) -> None:
    """Rows as older servers stored them: Python's json writes NaN and Infinity."""
    bad = measurement("a" * 64, mid="bad-1", p50=5.0, peak_rss_mb=float("nan"),
                      extra={"trace": [1.0, float("inf")]})
    bad["latency"]["p99_ms"] = float("-inf")
    with api.app.state.edgeprune.db.write() as s:
        s.add(MeasurementRow(id="bad-1", artifact_sha256="a" * 64, artifact_name="model.tflite",
                             device_kind="android-app", device_id="pixel", device_model="pixel", p50_ms=5.0,
                             timing_meaningful=True, body=json.dumps(bad)))


def test_stored_non_finite_rows_never_take_a_list_down(api: Api) -> None:
    assert api.client.post(URL, json=measurement("a" * 64, mid="good-1"), headers=api.device).status_code == 201
    _insert_bad_rows(api)
    listed = api.client.get(URL, headers=api.admin)  # the admin reads every row (old rows have no owner)
    assert listed.status_code == 200
    rows = {m["id"]: m for m in _strict_json(listed.text)}
    assert set(rows) == {"good-1", "bad-1"}
    assert rows["bad-1"]["peak_rss_mb"] is None and rows["bad-1"]["extra"]["trace"] == [1.0, None]
    assert rows["bad-1"]["latency"]["p99_ms"] is None and rows["bad-1"]["latency"]["p50_ms"] == 5.0
    assert listed.headers["x-edgeprune-repaired"] == "bad-1"  # and it says so
    one = api.client.get(f"{URL}/bad-1", headers=api.admin)
    assert one.status_code == 200 and _strict_json(one.text)["peak_rss_mb"] is None
    assert one.headers["x-edgeprune-repaired"] == "bad-1"
    good = api.client.get(f"{URL}/good-1", headers=api.device)
    assert good.status_code == 200 and "x-edgeprune-repaired" not in good.headers
    assert api.client.get("/dashboard", headers=api.admin).status_code == 200


def test_stored_non_finite_model_json_still_delivers(api: Api) -> None:
    bundle_sha, doc, _ = api.publish(channel="stable")
    broken = json.dumps({**doc, "metrics": {"model.tflite": {"balanced_accuracy": float("nan")}}})
    with api.app.state.edgeprune.db.write() as s:
        s.get(Bundle, bundle_sha).model_json = broken
    resp = api.client.get("/api/v1/apps/org.example.app/channels/stable/current", headers=api.device)
    assert resp.status_code == 200
    assert _strict_json(resp.text)["model_json"]["metrics"]["model.tflite"]["balanced_accuracy"] is None
    assert resp.headers["x-edgeprune-repaired"] == bundle_sha
    assert api.client.get("/api/v1/bundles", headers=api.device).status_code == 200
    assert api.client.get("/dashboard", headers=api.admin).status_code == 200


MODEL_JSON_NUMBERS = {
    "NaN metric": ('"balanced_accuracy": 0.8', '"balanced_accuracy": NaN', "metrics"),
    "Infinity threshold": ('"decision_thresholds": {}', '"decision_thresholds": {"malignant": Infinity}',
                           "decision_thresholds.malignant"),
    "1e400 in preprocessing": ('"std": [0.5]', '"std": [1e400]', "preprocessing.std[0]"),
}


def _bundle_with_text_edit(replace: str, by: str) -> bytes:
    entries, doc = bundle_entries({"decision_thresholds": {}})
    text = json.dumps(doc)
    assert replace in text
    return build_zip([*entries[:-1], entry("model.json", text.replace(replace, by, 1).encode())])


@pytest.mark.parametrize("case", list(MODEL_JSON_NUMBERS))
def test_non_finite_model_json_is_refused_at_publish(api: Api, settings: ServerSettings, case: str) -> None:
    replace, by, field = MODEL_JSON_NUMBERS[case]
    resp = api.upload(_bundle_with_text_edit(replace, by))
    assert resp.status_code == 422, resp.text
    assert field in resp.json()["detail"] and "finite" in resp.json()["detail"]
    _nothing_stored(api, settings)


# --- 2. zip hygiene for every entry -----------------------------------------------------------------------

def _hostile() -> dict[str, tuple[bytes, int, str]]:
    """name -> (zip, status, text in the message). Each is a valid bundle plus one hostile detail."""
    good, _ = bundle_entries()
    bomb, bomb_size, bomb_crc = zero_bomb()
    model_tfl = good[0]
    return {
        "unlisted bomb, honest header": (build_zip([*good, RawEntry("pad.bin", bomb, bomb_crc, bomb_size)]), 413,
                                         "pad.bin"),
        "unlisted bomb, lying header": (build_zip([*good, RawEntry("pad.bin", bomb, bomb_crc, 1000)]), 422,
                                        "zip bomb"),
        "listed entry is a bomb": (build_zip([RawEntry("model.tflite", bomb, model_tfl.crc, model_tfl.size),
                                              *good[1:]]), 422, "zip bomb"),
        "local header names another file": (build_zip([*good, entry("notes.txt", b"x", local_name="../../x.sh")]),
                                            400, "local header"),
        "local name differs for a listed file": (build_zip([
            RawEntry(**{**model_tfl.__dict__, "local_name": "../model.tflite"}), *good[1:]]), 400, "local header"),
        "NUL in name": (build_zip([*good, entry("labels.txt\x00.sh", b"x")]), 400, "NUL"),
        "control character in name": (build_zip([*good, entry("a\x1b[2Jb.txt", b"x")]), 400, "control"),
        "direction override in name": (build_zip([*good, entry("report\u202etxt.sh", b"x")]), 400, "control"),
        "backslash": (build_zip([*good, entry("..\\..\\evil", b"x")]), 400, "backslash"),
        "absolute": (build_zip([*good, entry("/etc/passwd", b"x")]), 400, "absolute"),
        "dot-dot": (build_zip([*good, entry("golden/../../evil", b"x")]), 400, "'..'"),
        "unlisted small file": (build_zip([*good, entry("extra.txt", b"hello")]), 422, "does not list"),
        "unlisted directory": (build_zip([*good, entry("golden/", b"", method=0)]), 422, "does not list"),
        "case-only duplicate": (build_zip([*good, entry("LABELS.TXT", b"x")]), 400, "twice"),
        "hidden local entry between entries": (build_zip([good[0], RawEntry(**{
            **good[1].__dict__, "hidden_before": local_only("evil.sh", b"#!/bin/sh\nrm -rf /\n")}), good[2]]),
            400, "hidden"),
        "bytes prepended to the zip": (b"MZ" + b"\0" * 100 + build_zip(good), 400, "hidden"),
        "header size lies": (build_zip([RawEntry(**{**model_tfl.__dict__, "size": model_tfl.size + 7}),
                                        *good[1:]]), 400, "inflates to"),
        "bad CRC": (build_zip([RawEntry(**{**model_tfl.__dict__, "crc": model_tfl.crc ^ 1}), *good[1:]]), 400,
                    "CRC"),
        "bzip2 method": (build_zip([*good[:-1], RawEntry("extra.bz", b"BZh9", 0, 0, method=12), good[-1]]), 400,
                         "compression method"),
        "truncated deflate stream": (build_zip([RawEntry(**{**model_tfl.__dict__,
                                                            "data": model_tfl.data[:-3]}), *good[1:]]), 400,
                                     "model.tflite"),
    }


@pytest.mark.parametrize("case", list(_hostile()))
def test_hostile_zips_are_refused_and_nothing_is_stored(api: Api, settings: ServerSettings, case: str) -> None:
    data, status, text = _hostile()[case]
    if "bomb" in case:
        assert len(data) < 1_300_000  # 1.2 MB on the wire ...
    resp = api.upload(data)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    assert text in resp.json()["detail"], resp.json()
    _nothing_stored(api, settings)


def test_zero_bomb_really_inflates_past_a_gigabyte() -> None:
    data, size, _ = zero_bomb()
    assert size > 1_000_000_000 and len(data) < 1_300_000
    import zlib

    first = zlib.decompressobj(-15).decompress(data[: len(data) // 72], 32 << 20)
    assert len(first) >= 16 << 20 and not any(first[:4096])  # ... each 16 KB piece is 16 MiB of zeros


def test_directory_entries_of_listed_files_are_accepted(api: Api) -> None:
    files = {"model.tflite": b"TFL3 hostile test model" * 8, "golden/in.npy": b"\x93NUMPY fake"}
    from tests.server._helpers import model_json

    doc = model_json("dirs", "1.0.0", files)
    data = build_zip([entry("golden/", b"", method=0), *(entry(n, b) for n, b in files.items()),
                      entry("model.json", json.dumps(doc).encode())])
    assert api.upload(data).status_code == 201


# --- 4. signatures --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keys() -> tuple[Any, Any]:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()


def _raw_public(private: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _signed_bundle(private: Any, *, tamper_model: bool = False, **override: Any) -> bytes:
    good, _ = bundle_entries()
    model_bytes = zipfile.ZipFile(io.BytesIO(build_zip(good))).read("model.json")
    signature = sign(model_bytes, private, **override)
    if tamper_model:  # still a consistent bundle, but not the model.json that was signed
        doc = json.loads(model_bytes)
        doc["intended_use"] = "changed after signing"
        good = [*good[:-1], entry("model.json", json.dumps(doc).encode())]
    return build_zip([*good, entry("signature.json", signature)])


def test_signed_bundle_is_stored_served_and_described(api: Api, keys: tuple[Any, Any]) -> None:
    data = _signed_bundle(keys[0])
    resp = api.upload(data, channel="stable")
    assert resp.status_code == 201, resp.text
    sig = resp.json()["signature"]
    raw = _raw_public(keys[0])
    import hashlib

    assert sig["key_id"] == hashlib.sha256(raw).hexdigest()[:16] and sig["algorithm"] == "Ed25519"
    assert base64.b64decode(sig["public_key"]) == raw and len(base64.b64decode(sig["signature"])) == 64
    listed = api.client.get("/api/v1/bundles", headers=api.device).json()
    assert listed[0]["signature"] == sig
    current = api.client.get("/api/v1/apps/org.example.app/channels/stable/current", headers=api.device).json()
    assert current["signature"] == sig
    served = api.client.get(f"/api/v1/bundles/{sha(data)}/download", headers=api.device).content
    assert served == data and "signature.json" in zipfile.ZipFile(io.BytesIO(served)).namelist()
    assert api.upload(data).json()["signature"] == sig  # idempotent re-upload keeps it


@pytest.mark.parametrize("case", ["tampered model.json", "wrong signature", "key_id of another key",
                                  "missing field", "not JSON", "unknown algorithm"])
def test_bad_signatures_are_422(api: Api, settings: ServerSettings, keys: tuple[Any, Any], case: str) -> None:
    key = keys[0]
    if case == "tampered model.json":
        data, text = _signed_bundle(key, tamper_model=True), "changed after signing"
    elif case == "wrong signature":
        data, text = _signed_bundle(key, signature=base64.b64encode(b"\x01" * 64).decode()), "does not verify"
    elif case == "key_id of another key":
        data, text = _signed_bundle(key, key_id="0123456789abcdef"), "key_id"
    elif case == "unknown algorithm":
        data, text = _signed_bundle(key, algorithm="RSA"), "algorithm"
    else:
        good, _ = bundle_entries()
        body = b'{"format": 1}' if case == "missing field" else b"{not json"
        data, text = build_zip([*good, entry("signature.json", body)]), "signature.json is malformed"
    resp = api.upload(data)
    assert resp.status_code == 422, resp.text
    assert text in resp.json()["detail"]
    _nothing_stored(api, settings)


@pytest.fixture
def pinned(settings: ServerSettings, keys: tuple[Any, Any]) -> Iterator[Api]:
    """A server that accepts only bundles signed by keys[0]."""
    trusted = base64.b64encode(_raw_public(keys[0])).decode()
    yield from make_api(settings.model_copy(update={"publisher_keys": [trusted]}))


def test_publisher_keys_require_a_trusted_signature(pinned: Api, settings: ServerSettings,
                                                    keys: tuple[Any, Any]) -> None:
    unsigned = pinned.upload(make_bundle()[0])
    assert unsigned.status_code == 422 and "not signed" in unsigned.json()["detail"]
    other = pinned.upload(_signed_bundle(keys[1]))
    assert other.status_code == 403 and "EDGEPRUNE_PUBLISHER_KEYS" in other.json()["detail"]
    _nothing_stored(pinned, settings)
    ok = pinned.upload(_signed_bundle(keys[0]))
    assert ok.status_code == 201 and ok.json()["signature"]["public_key"] == base64.b64encode(
        _raw_public(keys[0])).decode()


def test_publisher_keys_setting_reads_files_and_refuses_junk(tmp_path: Path, keys: tuple[Any, Any]) -> None:
    from cryptography.hazmat.primitives import serialization

    from edgeprune.errors import EdgepruneError

    pem = tmp_path / "publisher.pub.pem"
    pem.write_bytes(keys[0].public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo))
    other = base64.b64encode(_raw_public(keys[1])).decode()
    s = ServerSettings.from_env({"EDGEPRUNE_PUBLISHER_KEYS": f"{pem}, {other}"}, data_dir=tmp_path)
    assert s.publisher_keys == [base64.b64encode(_raw_public(keys[0])).decode(), other]
    private = tmp_path / "publisher.pem"
    private.write_bytes(keys[0].private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    for junk, text in ((str(private), "private key"), ("not-a-key", "publisher key"),
                       (str(tmp_path / "missing.pem"), "does not exist")):
        with pytest.raises(EdgepruneError, match=text):
            ServerSettings.from_env({"EDGEPRUNE_PUBLISHER_KEYS": junk}, data_dir=tmp_path)


# --- 7. Range, hashing once, crashed uploads, database down ---------------------------------------------

def test_range_follows_rfc_9110(api: Api) -> None:
    bundle_sha, _, data = api.publish(model_bytes=os.urandom(3000))
    url, n = f"/api/v1/bundles/{bundle_sha}/download", len(data)

    def get(value: str, **extra: str) -> Any:
        return api.client.get(url, headers={**api.device, "Range": value, **extra})

    for ignored in ("bytes=5-2", "bytes=abc", "items=0-5", "bytes=0-3,9-1", "bytes=", "bytes=--5", "5-9"):
        resp = get(ignored)
        assert resp.status_code == 200 and resp.content == data, ignored  # invalid: ignored, whole file
    part = get(f"bytes=10-19,{n + 100}-")
    assert part.status_code == 206 and part.content == data[10:20]  # one satisfiable range is enough
    assert part.headers["content-range"] == f"bytes 10-19/{n}"
    assert get(f"bytes=-{n + 50}").content == data  # a suffix longer than the file is the whole file
    assert get(f"bytes=0-{n + 50}").headers["content-range"] == f"bytes 0-{n - 1}/{n}"
    for unsatisfiable in (f"bytes={n}-", f"bytes={n + 5}-{n + 9}", "bytes=-0"):
        resp = get(unsatisfiable)
        assert resp.status_code == 416, unsatisfiable
        assert resp.headers["content-range"] == f"bytes */{n}" and "ranges" in resp.json()["detail"]
    assert get(f"bytes={n + 5}-", **{"If-Range": '"other"'}).status_code == 200  # stale validator: all
    multi = get("bytes=0-1,100-101")
    assert multi.status_code == 206 and multi.headers["content-type"].startswith("multipart/byteranges")


def test_each_stored_file_is_hashed_once(api: Api, settings: ServerSettings,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import edgeprune.server.storage as storage

    calls: list[Path] = []
    real = storage.sha256_file
    monkeypatch.setattr(storage, "sha256_file", lambda p, *a: calls.append(Path(p)) or real(p, *a))
    bundle_sha, _, data = api.publish()
    url = f"/api/v1/bundles/{bundle_sha}/download"
    for _ in range(3):
        resp = api.client.get(url, headers=api.device)
        assert resp.status_code == 200 and resp.headers["etag"] == f'"{bundle_sha}"'
    assert calls == []  # the sha256 computed while receiving is reused
    stored = settings.data_dir / "bundles" / bundle_sha[:2] / f"{bundle_sha}.zip"
    os.utime(stored, (time.time() - 60, time.time() - 60))  # the file's identity changed: check it once more
    for _ in range(2):
        assert api.client.get(url, headers=api.device).content == data
    assert calls == [stored]


def test_crashed_upload_files_are_removed_at_start_up(settings: ServerSettings) -> None:
    incoming = settings.data_dir / "bundles" / ".incoming"
    incoming.mkdir(parents=True)
    stale, busy, fresh = (incoming / f"upload-{name}.part" for name in ("crashed", "running", "new"))
    for p in (stale, busy, fresh):
        p.write_bytes(b"half an upload")
    for p in (stale, busy):
        os.utime(p, (time.time() - 3600, time.time() - 3600))
    with open(busy, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another server process is still receiving it
        for _api in make_api(settings):
            assert not stale.exists()
            assert busy.exists() and fresh.exists()


@contextmanager
def _database_down(request: pytest.FixtureRequest, api: Api, settings: ServerSettings) -> Iterator[None]:
    state = api.app.state.edgeprune
    state.keys.clear()
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        db_file = Path(str(url.database))
        state.db.dispose()
        moved = db_file.with_name("moved-away.db")
        db_file.rename(moved)
        db_file.mkdir()  # a directory where the database file was: every connection fails
        try:
            yield
        finally:
            db_file.rmdir()
            moved.rename(db_file)
        return
    import psycopg

    cluster = request.getfixturevalue("pg_cluster")
    name = url.database
    admin = f"host=127.0.0.1 port={cluster.server.port} user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                     "AND pid <> pg_backend_pid()", (name,))
    state.db.dispose()
    try:
        yield
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def test_database_down_gives_json_503(request: pytest.FixtureRequest, api: Api, settings: ServerSettings) -> None:
    with _database_down(request, api, settings):
        for method, path, headers in (("GET", URL, api.device), ("GET", "/api/v1/bundles", api.admin),
                                      ("POST", URL, api.device)):
            kw = {"json": measurement("a" * 64)} if method == "POST" else {}
            resp = api.client.request(method, path, headers=headers, **kw)
            assert resp.status_code == 503, (path, resp.text)
            assert resp.headers["content-type"].startswith("application/json")
            detail = resp.json()["detail"]
            assert "database" in detail and "unavailable" in detail
        health = api.client.get("/healthz")
        assert health.status_code == 503 and health.json()["status"] == "database unavailable"
    api.app.state.edgeprune.keys.clear()
    assert api.client.get(URL, headers=api.device).status_code == 200  # back when the database is


# --- 1 + 2 locally: `edgeprune publish` refuses before any upload ---------------------------------------

@pytest.mark.parametrize("case", ["NaN metric", "unlisted bomb, lying header", "NUL in name", "bad signature"])
def test_publish_refuses_locally_with_one_line(tmp_path: Path, case: str, keys: tuple[Any, Any]) -> None:
    import typer
    from typer.testing import CliRunner

    from edgeprune.cli.publish import publish
    from tests.server.conftest import ADMIN_KEY, free_port

    if case == "NaN metric":
        data = _bundle_with_text_edit(*MODEL_JSON_NUMBERS[case][:2])
    elif case == "bad signature":
        data = _signed_bundle(keys[0], tamper_model=True)
    else:
        data = _hostile()[case][0]
    zip_path = tmp_path / "bundle.zip"
    zip_path.write_bytes(data)
    app = typer.Typer()
    app.command("publish")(publish)
    app.command("noop")(lambda: None)
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: an upload attempt would say "cannot reach"
    res = CliRunner().invoke(app, ["publish", str(zip_path), "--server", dead],
                             env={"EDGEPRUNE_API_KEY": ADMIN_KEY})
    assert res.exit_code == 2, res.output
    assert "is not a valid bundle" in res.output and "nothing was uploaded" in res.output
    assert "cannot reach" not in res.output and "Traceback" not in res.output
    assert len([line for line in res.output.splitlines() if line.strip()]) == 1


def test_publish_signed_bundle_names_the_key(live_server: Any, tmp_path: Path, keys: tuple[Any, Any]) -> None:
    import hashlib

    import typer
    from typer.testing import CliRunner

    from edgeprune.cli.publish import publish
    from tests.server.conftest import ADMIN_KEY

    zip_path = tmp_path / "signed.zip"
    zip_path.write_bytes(_signed_bundle(keys[0]))
    app = typer.Typer()
    app.command("publish")(publish)
    app.command("noop")(lambda: None)
    res = CliRunner().invoke(app, ["publish", str(zip_path), "--server", live_server.url],
                             env={"EDGEPRUNE_API_KEY": ADMIN_KEY})
    assert res.exit_code == 0, res.output
    assert f"signed by publisher key {hashlib.sha256(_raw_public(keys[0])).hexdigest()[:16]}" in res.output
