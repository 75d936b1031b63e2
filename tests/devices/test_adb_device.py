"""The adb device end to end: real adb client -> fake server -> fake phone running a recorded benchmark_model."""

from __future__ import annotations

import hashlib
import importlib
import json
import threading
from pathlib import Path

import pytest

from edgeprune.devices import AdbDevice, BenchSpec, open_device
from edgeprune.devices.adb import APP_ACTIVITY, APP_PACKAGE, ENV_APK, ENV_BINARY, check_elf
from edgeprune.errors import EdgepruneError
from edgeprune.profile.stats import latency_stats
from edgeprune.schemas import Measurement
from tests.devices.conftest import elf_header, install_benchmark
from tests.devices.fake_adb import FakeAdbServer, FakeDevice, log_line

MODEL = b"TFL3" + bytes(range(256)) * 40  # the phone never parses it: only pushed, checked, removed


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    model, binary = tmp_path / "tiny.tflite", tmp_path / "benchmark_model"
    model.write_bytes(MODEL)
    binary.write_bytes(elf_header(183) + b"\x00" * 4096)
    return model, binary


def _device(server: FakeAdbServer, serial: str = "PIXEL7A1", **options: str) -> AdbDevice:
    query = "&".join(f"{k}={v}" for k, v in {"port": str(server.port), "poll": "0.02", **options}.items())
    dev = open_device(f"adb:{serial}?{query}")
    assert isinstance(dev, AdbDevice)
    return dev


def _leftovers(phone: FakeDevice) -> list[str]:
    return [p for p in phone.files if p.startswith("/data/local/tmp/edgeprune")]


def test_fingerprint_from_getprop_sysfs_and_dumpsys(adb_server: FakeAdbServer) -> None:
    fp = _device(adb_server).fingerprint()
    assert (fp.kind, fp.id, fp.model, fp.soc, fp.abi) == ("adb", "PIXEL7A1", "Pixel 7", "GS201", "arm64-v8a")
    assert fp.os == "Android 14 (API 34)" and fp.cores == 8 and fp.cpu_governor == "schedutil"
    assert fp.battery_temp_c == 31.0 and fp.model_extra["manufacturer"] == "Google"


def test_full_benchmark_run(adb_server: FakeAdbServer, files: tuple[Path, Path]) -> None:
    model, binary = files
    phone = adb_server.device("PIXEL7A1")
    install_benchmark(phone, "classic_xnnpack.txt")
    spec = BenchSpec(threads=[1, 4], warmup=5, runs=50, benchmark_binary=str(binary))
    ms = _device(adb_server).benchmark(model, spec, "tiny-fp32", "ab" * 32)
    assert [m.threads for m in ms] == [1, 4]
    assert [c["num_threads"] for c in phone.bench_calls] == ["1", "4"]
    for call in phone.bench_calls:
        assert call["use_xnnpack"] == "true" and call["num_runs"] == "50" and call["warmup_runs"] == "5"
        assert call["graph"].endswith("/model.tflite") and call["report_peak_memory_footprint"] == "true"
    m = ms[1]
    assert Measurement.model_validate_json(m.model_dump_json()) == m
    assert (m.artifact_name, m.artifact_sha256) == ("tiny-fp32", "ab" * 32)
    assert (m.device.kind, m.device.model) == ("adb", "Pixel 7")
    assert m.runtime == "benchmark_model (TFLite)" and m.delegate == "xnnpack" and m.timing_meaningful
    assert (m.runs, m.warmup) == (50, 5)
    assert m.latency is not None
    assert m.latency.p50_ms == pytest.approx(29.46) and m.latency.p90_ms == pytest.approx(31.422)
    assert m.init_ms == pytest.approx(17.187) and m.first_inference_ms == pytest.approx(35.123)
    assert m.peak_rss_mb == pytest.approx(52.3828) and m.load_delta_mb == pytest.approx(4.21094)
    assert m.extra["delegate_applied"] is True and m.extra["p90_from"] == "p95 (upper bound)"
    assert m.extra["benchmark_model"]["overall_footprint_mb"] == pytest.approx(46.0859)
    # the binary went over byte-identical and executable (the fake refuses to run it otherwise); all cleaned up
    assert _leftovers(phone) == [] and any(c.startswith("chmod 755 /data/local/tmp/edgeprune-") for c in phone.commands)
    assert any(c.startswith("rm -rf /data/local/tmp/edgeprune-") for c in phone.commands)


def test_binary_from_environment_and_missing_binary(adb_server: FakeAdbServer, files: tuple[Path, Path],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    model, binary = files
    install_benchmark(adb_server.device("PIXEL7A1"), "classic_sci_notation.txt")
    monkeypatch.delenv(ENV_BINARY, raising=False)
    with pytest.raises(EdgepruneError, match=f"no benchmark_model binary.*never downloads.*{ENV_BINARY}="):
        _device(adb_server).benchmark(model, BenchSpec(), "m", "0")
    monkeypatch.setenv(ENV_BINARY, str(binary.with_name("nope")))
    with pytest.raises(EdgepruneError, match="benchmark_model binary not found"):
        _device(adb_server).benchmark(model, BenchSpec(), "m", "0")
    monkeypatch.setenv(ENV_BINARY, str(binary))
    (m,) = _device(adb_server).benchmark(model, BenchSpec(threads=[2], use_xnnpack=False), "m", "0")
    assert m.delegate == "none" and m.latency is not None and m.latency.mean_ms == pytest.approx(2950.34)
    assert adb_server.device("PIXEL7A1").bench_calls[0]["use_xnnpack"] == "false"


def test_binary_must_be_an_elf_for_the_device_abi(tmp_path: Path) -> None:
    apk = tmp_path / "benchmark.apk"
    apk.write_bytes(b"PK\x03\x04...")
    with pytest.raises(EdgepruneError, match="not an ELF executable"):
        check_elf(apk, "arm64-v8a")
    x86 = tmp_path / "benchmark_model_x86_64"
    x86.write_bytes(elf_header(62))
    with pytest.raises(EdgepruneError, match="ELF machine 62, but the device ABI is arm64-v8a"):
        check_elf(x86, "arm64-v8a")
    check_elf(x86, "x86_64")


@pytest.mark.parametrize(
    ("rc", "expect"), [(1, "exit code 1\\).*Benchmarking failed"), (139, "exit code 139, SIGSEGV")]
)
def test_crashing_benchmark(adb_server: FakeAdbServer, files: tuple[Path, Path], rc: int, expect: str) -> None:
    model, binary = files
    phone = adb_server.device("PIXEL7A1")
    install_benchmark(phone, "crash_missing_op.txt", rc=rc)
    with pytest.raises(EdgepruneError, match=expect) as info:
        _device(adb_server).benchmark(model, BenchSpec(benchmark_binary=str(binary)), "m", "0")
    assert "adb -s PIXEL7A1 shell" in str(info.value) and "\n" not in str(info.value)
    assert _leftovers(phone) == []


def test_benchmark_timeout_still_cleans_up(adb_server: FakeAdbServer, files: tuple[Path, Path]) -> None:
    model, binary = files
    phone = adb_server.device("PIXEL7A1")
    install_benchmark(phone, "classic_xnnpack.txt")
    adb_server.delays[r"^\S*/benchmark_model "] = 30.0
    with pytest.raises(EdgepruneError, match="did not finish within 1 s"):
        _device(adb_server, timeout="1").benchmark(model, BenchSpec(benchmark_binary=str(binary)), "m", "0")
    assert _leftovers(phone) == []


def test_big_cores_cooldown_and_op_profiling(adb_server: FakeAdbServer, files: tuple[Path, Path]) -> None:
    model, binary = files
    phone = adb_server.device("PIXEL7A1")
    install_benchmark(phone, "classic_op_profiling.txt")
    phone.battery_temps_c = [41.0, 39.5, 37.2]  # fingerprint reads 41.0, then cool-down polls 39.5, 37.2
    spec = BenchSpec(threads=[2], benchmark_binary=str(binary), big_cores=True, cooldown_c=38.0, op_profiling=True)
    (m,) = _device(adb_server).benchmark(model, spec, "m", "0")
    assert phone.taskset_masks == ["f0"] and m.extra["pinned_cores"] == [4, 5, 6, 7]  # the 2 mid + 2 big cores
    assert m.extra["cooldown"]["reached"] is True and m.extra["cooldown"]["start_c"] == 39.5
    assert m.extra["cooldown"]["end_c"] == 37.2 and m.device.battery_temp_c == 41.0
    ops = m.extra["benchmark_model"]["ops"]  # pulled from --profiling_output_csv_file
    assert [o["node_type"] for o in ops] == ["TfLiteXNNPackDelegate", "MEAN", "TfLiteXNNPackDelegate", "SOFTMAX"]
    assert m.extra["benchmark_model"]["delegate_cpu_split"]["delegate_fraction"] == pytest.approx(9.436 / 9.961)
    assert phone.bench_calls[0]["enable_op_profiling"] == "true"


def test_cooldown_wait_is_bounded(adb_server: FakeAdbServer, files: tuple[Path, Path]) -> None:
    model, binary = files
    phone = adb_server.device("PIXEL7A1")
    install_benchmark(phone, "classic_xnnpack.txt")
    phone.battery_temps_c = [45.0]  # never cools down
    spec = BenchSpec(benchmark_binary=str(binary), cooldown_c=38.0, cooldown_timeout_s=0.1)
    (m,) = _device(adb_server).benchmark(model, spec, "m", "0")
    assert m.extra["cooldown"]["reached"] is False and m.extra["cooldown"]["end_c"] == 45.0


def test_gpu_delegate_and_litert_flavor_flags(adb_server: FakeAdbServer, files: tuple[Path, Path]) -> None:
    model, binary = files
    phone = adb_server.device("PIXEL7A1")
    install_benchmark(phone, "litert_compiled_model.txt")
    device = _device(adb_server, flavor="litert", delegate="gpu", binary=str(binary))
    (m,) = device.benchmark(model, BenchSpec(), "m", "0")
    assert phone.bench_calls[0]["use_gpu"] == "true" and "use_xnnpack" not in phone.bench_calls[0]
    assert m.runtime == "benchmark_model (LiteRT CompiledModel)" and m.delegate == "gpu"
    assert m.extra["delegate_applied"] is False  # no "Replacing … with delegate" line: it silently ran on CPU
    with pytest.raises(EdgepruneError, match="delegate 'nnapi' is not available with the litert"):
        _device(adb_server, flavor="litert", binary=str(binary)).benchmark(model, BenchSpec(delegate="nnapi"), "m", "0")


def test_spec_options_are_checked(adb_server: FakeAdbServer) -> None:
    with pytest.raises(EdgepruneError, match="unknown adb option\\(s\\): colour"):
        open_device(f"adb:X?port={adb_server.port}&colour=blue")
    with pytest.raises(EdgepruneError, match="not key=value"):
        open_device("adb:X?big_cores")
    assert open_device(f"adb?port={adb_server.port}").serial is None  # type: ignore[attr-defined]


# ---- the demo app's BenchmarkActivity ------------------------------------------------------------------------------


def _demo_activity(error: str | None = None, delay_s: float = 0.15):  # noqa: ANN202 - a fake activity
    """What BenchmarkActivity does: time the model, write the Measurement JSON, log DONE (a bit later)."""

    def start(dev: FakeDevice, extras: dict[str, str]) -> None:
        data = dev.files[extras["model"]].data
        threads, warmup, runs = int(extras["threads"]), int(extras["warmup"]), int(extras["runs"])
        samples = [4.0 + 0.01 * ((7 * i) % 13) for i in range(runs)]
        result = {
            "schema_version": 1, "id": "f" * 32, "created_at": "2026-01-02T03:04:05+00:00",
            "artifact_name": Path(extras["model"]).name, "artifact_sha256": hashlib.sha256(data).hexdigest(),
            "device": {"kind": "android-app", "id": "b1c2", "model": "Pixel 7", "abi": "arm64-v8a", "os": "Android 14",
                       "soc": "GS201", "cores": 8, "cpu_governor": "", "battery_temp_c": 30.5},
            "runtime": "LiteRT 2.3.0 (Interpreter)", "threads": threads, "delegate": extras["delegate"],
            "warmup": warmup, "runs": runs, "latency": None if error else latency_stats(samples).model_dump(),
            "timing_meaningful": True, "init_ms": 12.5, "first_inference_ms": 9.0, "peak_rss_mb": 180.0,
            "load_delta_mb": 3.5, "pss_mb": 95.0,
            "extra": {"source": "BenchmarkActivity", "active_delegate": "xnnpack"},
        }  # fmt: skip
        if error:
            result["error"] = error
        path = f"{dev.app_dir(APP_PACKAGE)}/files/{extras['out']}"

        def finish() -> None:
            dev.write(path, json.dumps(result, indent=2))
            dev.logcat.append(log_line("EdgepruneBenchmark", f"EDGEPRUNE_BENCHMARK_DONE {path}"))

        threading.Timer(delay_s, finish).start()

    return start


def test_demo_app_path(adb_server: FakeAdbServer, files: tuple[Path, Path], tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    model, _ = files
    phone = adb_server.device("PIXEL7A1")
    phone.activities[APP_ACTIVITY] = _demo_activity()
    apk = tmp_path / "app-litert-debug.apk"
    apk.write_bytes(b"PK\x03\x04" + b"\x00" * 2000)
    monkeypatch.setenv(ENV_APK, str(apk))
    sha = hashlib.sha256(MODEL).hexdigest()
    ms = _device(adb_server, app="1").benchmark(model, BenchSpec(threads=[1, 4], warmup=3, runs=20), "tiny-fp32", sha)
    assert phone.installed_apks == [apk.read_bytes()]  # installed because it was missing
    assert [m.threads for m in ms] == [1, 4] and all(m.device.kind == "android-app" for m in ms)
    m = ms[0]
    assert m.artifact_name == "tiny-fp32" and m.artifact_sha256 == sha and m.runs == 20 and m.warmup == 3
    assert m.latency is not None and m.latency.n == 20 and m.pss_mb == 95.0 and m.extra["adb_serial"] == "PIXEL7A1"
    start = next(c for c in phone.commands if c.startswith("am start"))
    assert f"-n {APP_ACTIVITY}" in start and "--es delegate xnnpack" in start and "--ei threads 1" in start
    assert "--es model /data/user/0/org.edgeprune.demo/files/edgeprune-" in start
    assert _leftovers(phone) == [] and not [p for p in phone.files if "/files/edgeprune-" in p]


def test_demo_app_error_key_and_missing_app(adb_server: FakeAdbServer, files: tuple[Path, Path],
                                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    model, _ = files
    phone = adb_server.device("PIXEL7A1")
    monkeypatch.delenv(ENV_APK, raising=False)
    with pytest.raises(EdgepruneError, match=f"demo app \\({APP_PACKAGE}\\) is not installed on PIXEL7A1.*{ENV_APK}"):
        _device(adb_server, app="1").benchmark(model, BenchSpec(), "m", "0")
    phone.packages.add(APP_PACKAGE)
    phone.activities[APP_ACTIVITY] = _demo_activity(error="runtime not bundled in this build")
    with pytest.raises(EdgepruneError, match="benchmark failed on PIXEL7A1: runtime not bundled in this build"):
        _device(adb_server, app="1").benchmark(model, BenchSpec(), "m", hashlib.sha256(MODEL).hexdigest())
    with pytest.raises(EdgepruneError, match="no 'nnapi' delegate"):
        _device(adb_server, app="1").benchmark(model, BenchSpec(delegate="nnapi"), "m", "0")


def test_demo_app_that_never_finishes_times_out(adb_server: FakeAdbServer, files: tuple[Path, Path]) -> None:
    model, _ = files
    phone = adb_server.device("PIXEL7A1")
    phone.packages.add(APP_PACKAGE)
    phone.activities[APP_ACTIVITY] = lambda dev, extras: None
    with pytest.raises(EdgepruneError, match="did not finish its benchmark on PIXEL7A1 within 0.3 s"):
        _device(adb_server, app="1", timeout="0.3").benchmark(model, BenchSpec(), "m", "0")


def test_profile_cli_with_adb_device(adb_server: FakeAdbServer, files: tuple[Path, Path],
                                     monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """`edgeprune profile model.tflite --device adb:SERIAL?port=…` through the real adb client."""
    from rich.console import Console
    from typer.testing import CliRunner

    from edgeprune.cli import app

    model, binary = files
    install_benchmark(adb_server.device("PIXEL7A1"), "classic_xnnpack.txt")
    monkeypatch.setenv(ENV_BINARY, str(binary))
    monkeypatch.setattr(importlib.import_module("edgeprune.cli.profile"), "console", Console(width=250))
    res = CliRunner().invoke(app, ["profile", str(model), "--device", f"adb:PIXEL7A1?port={adb_server.port}",
                                   "--threads", "4", "--warmup", "5", "--runs", "50"])  # fmt: skip
    assert res.exit_code == 0, res.output
    row = next(ln for ln in res.output.splitlines() if ln.startswith("│ tiny"))
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[1:4] == ["adb:PIXEL7A1", "4", "xnnpack"]
    # timings, init, process peak; no model-attributable memory and no emulated parity from benchmark_model
    assert cells[4:] == ["29.460", "31.422", "31.899", "17.2", "52.4", "-", "-", "-"]
