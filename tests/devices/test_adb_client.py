"""The real adb client against the loopback fake server (and once against a real, empty adb server)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgeprune.devices.adb_client import AdbClient
from edgeprune.errors import EdgepruneError
from tests.devices.fake_adb import FakeAdbServer, free_port, wait_closed


@pytest.fixture
def client(adb_server: FakeAdbServer) -> AdbClient:
    return AdbClient(port=adb_server.port, timeout_s=20)


def test_discovery_lists_every_device_with_its_state(client: AdbClient, adb_server: FakeAdbServer) -> None:
    found = {d.serial: d for d in client.devices()}
    assert {s: d.state for s, d in found.items()} == {
        "PIXEL7A1": "device", "LEGACY02": "device", "OFFLINE3": "offline", "LOCKED04": "unauthorized",
    }  # fmt: skip
    assert found["PIXEL7A1"].info["model"] == "Pixel_7" and "transport_id" in found["PIXEL7A1"].info
    assert "host:devices-l" in adb_server.requests  # it really went through our server, not one on 5037


def test_serial_selection(client: AdbClient, adb_server: FakeAdbServer) -> None:
    assert client.select("LEGACY02") == "LEGACY02"
    with pytest.raises(EdgepruneError, match="several Android devices.*PIXEL7A1 \\(device\\).*adb:SERIAL"):
        client.select(None)
    with pytest.raises(EdgepruneError, match="'NOPE9' is not connected \\(connected: PIXEL7A1, LEGACY02"):
        client.select("NOPE9")
    assert client.shell("PIXEL7A1", "getprop ro.product.model").stdout.strip() == "Pixel 7"
    assert adb_server.device("PIXEL7A1").commands[-1] == "getprop ro.product.model"
    assert adb_server.device("LEGACY02").commands == []  # -s really picked one device


def test_single_device_is_selected_without_serial(adb_path: str) -> None:
    from tests.devices.conftest import make_phone

    with FakeAdbServer([make_phone("ONLY1")]) as server:
        c = AdbClient(adb_path, port=server.port, timeout_s=20)
        assert c.select() == "ONLY1"


def test_offline_and_unauthorized_devices_give_clear_errors(client: AdbClient) -> None:
    with pytest.raises(EdgepruneError, match="'OFFLINE3' is offline.*adb reconnect"):
        client.select("OFFLINE3")
    with pytest.raises(EdgepruneError, match="'LOCKED04' has not authorised.*Allow USB debugging"):
        client.select("LOCKED04")
    # the same errors when adb itself reports them (no select() first)
    with pytest.raises(EdgepruneError, match="'OFFLINE3' is offline"):
        client.shell("OFFLINE3", "true")
    with pytest.raises(EdgepruneError, match="not authorised"):
        client.shell("LOCKED04", "true")
    with pytest.raises(EdgepruneError, match="'GONE5' is not connected"):
        client.shell("GONE5", "true")


@pytest.mark.parametrize("serial", ["PIXEL7A1", "LEGACY02"])  # shell v2 packets, and the echo-marker fallback
def test_shell_exit_codes(client: AdbClient, serial: str) -> None:
    assert "shell_v2" in client.features("PIXEL7A1") and "shell_v2" not in client.features("LEGACY02")
    ok = client.shell(serial, ["echo", "hello world"])
    assert (ok.rc, ok.stdout) == (0, "hello world\n")
    missing = client.shell(serial, "cat /no/such/file")
    assert missing.rc == 1 and "No such file" in missing.stdout + missing.stderr
    unknown = client.shell(serial, "frobnicate --now")
    assert unknown.rc == 127 and "not found" in unknown.tail()


def test_push_pull_roundtrip_is_byte_identical(client: AdbClient, adb_server: FakeAdbServer, tmp_path: Path) -> None:
    payload = os.urandom(300_000)  # several sync DATA chunks
    src = tmp_path / "model.tflite"
    src.write_bytes(payload)
    client.push("PIXEL7A1", src, "/data/local/tmp/x/model.tflite")
    assert adb_server.device("PIXEL7A1").files["/data/local/tmp/x/model.tflite"].data == payload
    back = client.pull("PIXEL7A1", "/data/local/tmp/x/model.tflite", tmp_path / "back.bin")
    assert back.read_bytes() == payload
    with pytest.raises(EdgepruneError, match="adb pull of PIXEL7A1:/data/local/tmp/none failed"):
        client.pull("PIXEL7A1", "/data/local/tmp/none", tmp_path / "none.bin")


def test_install_streams_the_apk(client: AdbClient, adb_server: FakeAdbServer, tmp_path: Path) -> None:
    apk = tmp_path / "app.apk"
    apk.write_bytes(b"PK\x03\x04" + os.urandom(5000))
    client.install("PIXEL7A1", apk)
    dev = adb_server.device("PIXEL7A1")
    assert dev.installed_apks == [apk.read_bytes()] and "org.edgeprune.demo" in dev.packages
    bad = tmp_path / "bad.apk"
    bad.write_bytes(b"not a zip")
    with pytest.raises(EdgepruneError, match="installing bad.apk on PIXEL7A1 failed.*INSTALL_PARSE_FAILED"):
        client.install("PIXEL7A1", bad)


def test_timeout_kills_the_client_and_raises(client: AdbClient, adb_server: FakeAdbServer) -> None:
    adb_server.delays[r"^sleepy"] = 30.0
    with pytest.raises(EdgepruneError, match="did not finish within 1 s"):
        client.shell("PIXEL7A1", "sleepy", timeout=1)
    assert client.shell("PIXEL7A1", "echo still alive").stdout == "still alive\n"


def test_port_from_environment(adb_server: FakeAdbServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(adb_server.port))
    assert AdbClient().port == adb_server.port
    assert "PIXEL7A1" in {d.serial for d in AdbClient().devices()}


def test_missing_adb_binary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("EDGEPRUNE_ADB", raising=False)
    with pytest.raises(EdgepruneError, match="adb client was not found.*EDGEPRUNE_ADB"):
        AdbClient()


def test_real_adb_server_with_no_device(adb_path: str) -> None:
    """A real (Debian) adb server on an isolated port: empty list, then a clear 'no device' error."""
    port = free_port()
    c = AdbClient(adb_path, port=port, timeout_s=30)
    try:
        assert c.devices() == []
        with pytest.raises(EdgepruneError, match=f"no Android device is connected to the adb server on port {port}"):
            c.select()
    finally:
        c.kill_server()
        assert wait_closed(port)
