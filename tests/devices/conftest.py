"""Shared fixtures: recorded outputs, a fake phone population behind the real adb client, tiny real models."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.devices.fake_adb import FakeAdbServer, FakeDevice, wait_closed

GOLDEN = Path(__file__).with_name("golden")

PIXEL_PROPS = {
    "ro.product.model": "Pixel 7", "ro.product.manufacturer": "Google", "ro.soc.model": "GS201",
    "ro.soc.manufacturer": "Google", "ro.board.platform": "gs201", "ro.product.cpu.abi": "arm64-v8a",
    "ro.build.version.release": "14", "ro.build.version.sdk": "34",
    "ro.build.fingerprint": "google/panther/panther:14/UQ1A.240205.002/11224170:user/release-keys",
}  # fmt: skip
# Pixel 7 (Tensor G2): 4 little @1.80 GHz, 2 mid @2.35 GHz, 2 big @2.85 GHz
PIXEL_MAX_FREQ_KHZ = [1803000] * 4 + [2348000] * 2 + [2850000] * 2


def golden(name: str) -> str:
    return (GOLDEN / name).read_text()


def elf_header(machine: int) -> bytes:
    """The first bytes of a 64-bit little-endian ELF executable for ``machine`` (183 = aarch64)."""
    ident = b"\x7fELF\x02\x01\x01" + b"\x00" * 9
    return ident + (2).to_bytes(2, "little") + machine.to_bytes(2, "little") + b"\x00" * 44


def benchmark_rule(recording: str, rc: int = 0):  # noqa: ANN201 - a fake_adb Rule
    """A fake ``benchmark_model``: checks what a real one would need, then prints a recorded log on stderr."""

    def rule(dev: FakeDevice, argv: list[str]) -> tuple[str, str, int]:
        binary = argv[0]
        f = dev.files.get(binary)
        if f is None:
            return "", f"/system/bin/sh: {binary}: inaccessible or not found\n", 127
        if not f.mode & 0o111:
            return "", f"/system/bin/sh: {binary}: can't execute: Permission denied\n", 126
        flags = dict(a[2:].split("=", 1) for a in argv[1:] if a.startswith("--") and "=" in a)
        if flags.get("graph") not in dev.files:
            return "", f"ERROR: Could not open '{flags.get('graph')}'.\nERROR: Benchmarking failed.\n", 1
        dev.bench_calls.append(flags)
        if "profiling_output_csv_file" in flags:
            dev.write(flags["profiling_output_csv_file"], golden("op_profile.csv"))
        return "", golden(recording), rc  # TFLITE_LOG writes to stderr

    return rule


def install_benchmark(dev: FakeDevice, recording: str, rc: int = 0) -> None:
    """Make ``<anything>/benchmark_model …`` on ``dev`` answer with a recorded log."""
    dev.add_rule(r"^\S*/benchmark_model ", benchmark_rule(recording, rc))


def make_phone(serial: str, **kw: object) -> FakeDevice:
    dev = FakeDevice(serial, props=dict(PIXEL_PROPS), **kw)  # type: ignore[arg-type]
    dev.write("/sys/devices/system/cpu/possible", "0-7\n")
    dev.write("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", "schedutil\n")
    for i, khz in enumerate(PIXEL_MAX_FREQ_KHZ):
        dev.write(f"/sys/devices/system/cpu/cpu{i}/cpufreq/cpuinfo_max_freq", f"{khz}\n")
    return dev


@pytest.fixture(scope="session")
def adb_path() -> str:
    path = shutil.which("adb")
    if path is None:
        pytest.skip("the real adb client is not installed (Debian: apt-get install adb)")
    return path


@pytest.fixture
def adb_server(adb_path: str) -> Iterator[FakeAdbServer]:
    """Four fake devices on an isolated loopback port: two usable (v2 and legacy shell), one offline, one locked."""
    server = FakeAdbServer([
        make_phone("PIXEL7A1"), make_phone("LEGACY02", shell_v2=False),
        FakeDevice("OFFLINE3", state="offline"), FakeDevice("LOCKED04", state="unauthorized"),
    ])  # fmt: skip
    with server:
        yield server
    if not wait_closed(server.port, timeout=2.0):  # a real server was started on our port by mistake
        subprocess.run([adb_path, "-P", str(server.port), "kill-server"], capture_output=True, timeout=10)


@pytest.fixture(scope="session")
def tiny_net():  # noqa: ANN201 - a torch module
    """A tiny CNN (conv -> relu -> global mean -> linear, 3 classes) on 16x16 RGB inputs."""
    torch = pytest.importorskip("torch")

    from tests._nets import TinyConvNet

    torch.manual_seed(0)
    return TinyConvNet().eval()


def export_tiny(net, out_dir: Path, precision: str) -> Path:  # noqa: ANN001
    """Export ``net`` with the project's own TFLite exporter (int8: calibrated on 32 random inputs)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("litert_torch")
    from edgeprune.export import ExportRequest, get_exporter

    gen = torch.Generator().manual_seed(1)
    calib = torch.randn(32, 3, 16, 16, generator=gen) if precision == "int8" else None
    record = get_exporter("tflite").export(ExportRequest(
        model=net, example_input=torch.randn(1, 3, 16, 16, generator=gen), precision=precision, out_dir=out_dir,
        name=f"tiny_{precision}", calib_inputs=calib,
    ))  # fmt: skip
    return out_dir / record.file


@pytest.fixture(scope="session")
def tiny_model(tiny_net, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: ANN001
    """The tiny CNN as a real fp32 .tflite."""
    return export_tiny(tiny_net, tmp_path_factory.mktemp("devices"), "fp32")
