"""The host device on a real tiny .tflite converted in-process with litert-torch, run by ai-edge-litert."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeprune.devices import DEVICES, BenchSpec, HostDevice, open_device
from edgeprune.devices._host_bench import make_input
from edgeprune.errors import EdgepruneError
from edgeprune.fsutil import sha256_file
from edgeprune.schemas import Measurement

pytest.importorskip("ai_edge_litert")

RUNS = 7


@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch = pytest.importorskip("torch")
    litert_torch = pytest.importorskip("litert_torch")

    from tests._nets import TinyConvNet

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("host") / "tiny.tflite"
    litert_torch.convert(TinyConvNet().eval(), (torch.randn(1, 3, 16, 16),)).export(str(path))
    return path


def test_fingerprint_describes_this_machine() -> None:
    fp = HostDevice().fingerprint()
    assert fp.kind == "host" and fp.id and fp.model
    assert fp.abi == platform.machine() and fp.cores is not None and fp.cores >= 1
    assert fp.os.startswith(platform.system())


def test_benchmark_two_thread_configs(tiny_tflite: Path) -> None:
    sha = sha256_file(tiny_tflite)
    spec = BenchSpec(threads=[1, 2], warmup=2, runs=RUNS)
    ms = open_device("host").benchmark(tiny_tflite, spec, "tiny-fp32", sha)
    assert [m.threads for m in ms] == [1, 2]
    for m in ms:
        assert m.artifact_name == "tiny-fp32" and m.artifact_sha256 == sha
        assert m.device.kind == "host" and m.timing_meaningful
        assert m.runtime.startswith("ai-edge-litert ") and m.delegate == "xnnpack"
        assert m.runs == RUNS and m.warmup == 2
        assert m.latency is not None and m.latency.n == RUNS
        assert (
            0
            < m.latency.min_ms
            <= m.latency.p50_ms
            <= m.latency.p90_ms
            <= m.latency.p99_ms
            <= m.latency.max_ms
        )
        assert m.init_ms is not None and m.init_ms > 0
        assert m.first_inference_ms is not None and m.first_inference_ms > 0
        assert m.peak_rss_mb is not None and m.peak_rss_mb > 0
        assert m.load_delta_mb is not None and m.peak_rss_mb >= m.extra["rss_after_load_mb"]
        assert m.extra["inputs"] == [
            {"name": m.extra["inputs"][0]["name"], "shape": [1, 3, 16, 16], "dtype": "float32"}
        ]
        assert m.extra["outputs"][0]["shape"] == [1, 3] and m.extra["outputs_finite"]
        assert Measurement.model_validate_json(m.model_dump_json()) == m
    assert ms[0].id != ms[1].id


def test_benchmark_without_xnnpack(tiny_tflite: Path) -> None:
    (m,) = HostDevice().benchmark(
        tiny_tflite, BenchSpec(threads=[1], warmup=0, runs=2, use_xnnpack=False), "t", "0"
    )
    assert m.delegate == "none" and m.runs == 2 and not m.extra["xnnpack_delegate_created"]


def test_module_entry_point_prints_one_json_line(tiny_tflite: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "edgeprune.devices._host_bench",
        "--model",
        str(tiny_tflite),
        "--threads",
        "1",
    ]
    out = subprocess.run(
        cmd + ["--warmup", "0", "--runs", "3"], capture_output=True, text=True, check=True
    ).stdout
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1 and len(json.loads(lines[0])["samples_ms"]) == 3


def test_bad_model_paths_raise(tmp_path: Path) -> None:
    spec = BenchSpec(threads=[1], warmup=0, runs=1)
    with pytest.raises(EdgepruneError, match="not found"):
        HostDevice().benchmark(tmp_path / "missing.tflite", spec, "x", "0")
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"this is not a flatbuffer")
    with pytest.raises(EdgepruneError, match="junk.tflite") as info:
        HostDevice().benchmark(junk, spec, "x", "0")
    assert "\n" not in str(info.value)


def test_open_device_and_registry() -> None:
    assert isinstance(open_device(" host "), HostDevice) and "host" in DEVICES
    with pytest.raises(EdgepruneError, match="did you mean 'host'"):
        open_device("hots")
    for bad in ("", "host:extra"):
        with pytest.raises(EdgepruneError):
            open_device(bad)


@pytest.mark.parametrize(
    "kwargs", [{"threads": []}, {"threads": [0]}, {"threads": [1], "runs": 0}, {"threads": [1], "warmup": -1}]
)
def test_bench_spec_validation(kwargs: dict) -> None:
    with pytest.raises(EdgepruneError):
        BenchSpec(**kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int8, np.uint8, np.int16, np.int32, np.bool_])
def test_make_input_dtypes(dtype: type) -> None:
    a = make_input([1, 3, 8, 8], dtype, np.random.default_rng(0))
    b = make_input([1, 3, 8, 8], dtype, np.random.default_rng(0))
    assert a.dtype == np.dtype(dtype) and a.shape == (1, 3, 8, 8) and np.array_equal(a, b)
    if dtype in (np.int8, np.int16):
        assert a.min() < 0 < a.max()  # the whole quantized range is used, not just non-negative values
    if dtype is np.uint8:
        assert a.max() > 127
