"""Declared device capabilities: which lanes can time, and what their numbers are (``edgeprune list devices``)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from edgeprune.cli import app
from edgeprune.devices import DEVICES
from edgeprune.devices.bench_result import measurement_from_bench, parse_bench_result
from edgeprune.schemas import DeviceFingerprint

RESULT = ('{"samples_ms": [1.0, 2.0, 3.0], "runtime_version": "2.0", "delegate": "xnnpack", "warmup": 1, '
          '"init_ms": 5.0, "first_inference_ms": 4.0, "rss_before_mb": 10.0, "rss_after_load_mb": 12.0, '
          '"peak_rss_mb": 13.0, "inputs": [], "outputs": [], "outputs_finite": true}')  # fmt: skip


@pytest.mark.parametrize("kind", DEVICES.names())
def test_every_device_declares_its_timing(kind: str) -> None:
    cls = DEVICES.get(kind)
    assert isinstance(cls.can_time, bool) and cls.timing_note.strip()


def test_only_the_emulator_cannot_time() -> None:
    assert [k for k in DEVICES.names() if not DEVICES.get(k).can_time] == ["qemu-arm64"]


@pytest.mark.parametrize("kind", DEVICES.names())
def test_a_measurement_of_the_shared_reader_says_whether_its_timing_means_something(kind: str) -> None:
    r = parse_bench_result(f"noise\n{RESULT}\n", "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.")
    assert r is not None and r["xnnpack_delegate_created"] is True
    device = DeviceFingerprint(kind=kind, id="x", model="m", abi="a", os="o")
    m = measurement_from_bench(r, device, 1, "n", "s", emulated=not DEVICES.get(kind).can_time)
    assert m.timing_meaningful is DEVICES.get(kind).can_time
    assert (m.init_ms is None) is (not DEVICES.get(kind).can_time)


def test_reader_ignores_lines_without_samples() -> None:
    assert parse_bench_result('{"other": 1}\nnot json {\n') is None


def test_list_devices_shows_the_declarations() -> None:
    res = CliRunner().invoke(app, ["list", "devices"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    qemu = next(line for line in res.output.splitlines() if "qemu-arm64" in line)
    assert "parity only" in qemu and "not meaningful" in qemu
    host = next(line for line in res.output.splitlines() if "│ host" in line)
    assert "yes" in host
