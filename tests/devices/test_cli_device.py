"""`edgeprune device list` / `device setup qemu-arm64` through typer's test runner (the sub-app on its own)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeprune.cli.device import device_app
from edgeprune.devices.qemu_setup import find_env
from tests.devices.fake_adb import FakeAdbServer


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    monkeypatch.setattr("edgeprune.cli.device.console", Console(width=300))


def test_list_shows_every_kind_and_adb_devices(adb_server: FakeAdbServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(adb_server.port))
    monkeypatch.setenv("EDGEPRUNE_BENCHMARK_MODEL", "/opt/bm/benchmark_model")
    res = CliRunner().invoke(device_app, ["list", "--adb"])
    assert res.exit_code == 0, res.output
    for kind in ("host", "adb", "qemu-arm64", "ssh"):
        assert f"│ {kind} " in res.output
    assert "PIXEL7A1 (device)" in res.output and "OFFLINE3 (offline)" in res.output
    assert "EDGEPRUNE_BENCHMARK_MODEL=/opt/bm/benchmark_model" in res.output


def test_setup_reports_missing_tools(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no qemu, no debootstrap
    res = CliRunner().invoke(device_app, ["setup", "qemu-arm64", "--cache", str(tmp_path / "cache")])
    assert res.exit_code == 2
    assert "missing tools for the qemu-arm64 lane" in res.output and "apt-get install qemu-user-static" in res.output


def test_setup_reuses_a_ready_cache() -> None:
    env = find_env()
    if env is None or not shutil.which("qemu-aarch64-static"):
        pytest.skip("the qemu-arm64 lane is not set up here (test_qemu_arm64.py sets it up)")
    res = CliRunner().invoke(device_app, ["setup", "qemu-arm64", "--cache", str(env.cache)])
    assert res.exit_code == 0, res.output
    assert "already set up" in res.output and env.info["ai_edge_litert"] in res.output
