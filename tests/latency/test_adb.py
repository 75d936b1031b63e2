"""The adb lane: the real adb client, the test suite's adb server stand-in, and a phone whose benchmark_model runs
the real LiteRT runtime on the pushed file (so the table's shape is a real one, only the CPU is this machine's)."""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import pytest
import torch

from edgeprune.budget import Budget
from edgeprune.devices._host_bench import run as run_litert
from edgeprune.latency.cache import load_table
from edgeprune.latency.pruner import prune_to_latency
from edgeprune.prune.criteria import create_criterion
from edgeprune.prune.types import PruneContext, PruneSettings
from tests.devices.conftest import adb_path, adb_server, elf_header  # noqa: F401 - fixtures used below
from tests.devices.fake_adb import FakeAdbServer, FakeDevice
from tests.latency._latnet import LatNet

pytest.importorskip("litert_torch")
pytest.importorskip("ai_edge_litert")


def _log(samples_us: list[float], threads: int, graph: str) -> str:
    """A classic benchmark_model log (the lines edgeprune's parser reads) for these timed runs."""
    s = sorted(samples_us)
    q = statistics.quantiles(s, n=20) if len(s) > 1 else [s[0]] * 19
    avg = statistics.fmean(s)
    std = statistics.pstdev(s)
    return "\n".join([
        "INFO: STARTING!", f"INFO: Num threads: [{threads}]", f"INFO: Graph: [{graph}]",
        "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.", "INFO: Initialized session in 1.5ms.",
        f"INFO: count=2 first={s[0]:.0f} curr={s[0]:.0f} min={s[0]:.0f} max={s[0]:.0f} avg={s[0]:.1f} std=0",
        "",
        f"INFO: count={len(s)} first={samples_us[0]:.0f} curr={samples_us[-1]:.0f} min={s[0]:.0f} "
        f"max={s[-1]:.0f} avg={avg:.1f} std={std:.2f} p5={q[0]:.0f} median={statistics.median(s):.0f} "
        f"p95={q[18]:.0f}",
        "",
        f"INFO: Inference timings in us: Init: 1500, First inference: {s[0]:.0f}, Warmup (avg): {s[0]:.1f}, "
        f"Inference (avg): {avg:.1f}",
        "",
    ])  # fmt: skip


def real_runtime_rule(dev: FakeDevice, argv: list[str]) -> tuple[str, str, int]:
    """``benchmark_model --graph=...``: run the pushed .tflite in LiteRT here and answer with its timings."""
    flags = dict(a[2:].split("=", 1) for a in argv[1:] if a.startswith("--") and "=" in a)
    graph = flags.get("graph", "")
    if graph not in dev.files or argv[0] not in dev.files:
        return "", f"ERROR: Could not open '{graph}'.\n", 1
    dev.bench_calls.append(flags)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(dev.files[graph].data)
        r = run_litert(str(path), int(flags["num_threads"]), int(flags["warmup_runs"]), int(flags["num_runs"]),
                       xnnpack=True)
    return "", _log([ms * 1000 for ms in r["samples_ms"]], int(flags["num_threads"]), graph), 0


def _prune(spec: str):  # noqa: ANN202 - a LatencyPruneResult
    torch.manual_seed(0)
    ctx = PruneContext(example_input=torch.randn(1, 3, 32, 32), log=lambda _msg: None)
    return prune_to_latency(LatNet(), create_criterion("l1"), Budget("latency", 0.35), ctx,
                            PruneSettings(round_to=16), device=spec, runs=10)


def test_latency_pruning_on_the_adb_lane(adb_server: FakeAdbServer, tmp_path: Path,  # noqa: F811
                                         latency_cache: Path) -> None:
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(elf_header(183) + b"\x00" * 1024)
    phone = adb_server.device("PIXEL7A1")
    phone.add_rule(r"^\S*/benchmark_model ", real_runtime_rule)
    spec = f"adb:PIXEL7A1?port={adb_server.port}&poll=0.02&binary={binary}"

    first = _prune(spec)
    lat = first.extra["latency"]
    fp = lat["fingerprint"]
    assert (fp["kind"], fp["model"], fp["abi"]) == ("adb", "Pixel 7", "arm64-v8a")
    assert fp["runtime"].startswith("benchmark_model ")  # the binary's hash: a new binary is a new table
    # every timing went through benchmark_model on the phone: the table's points plus the dense and pruned models
    assert lat["timings_taken"] > 0 and len(phone.bench_calls) == lat["timings_taken"] + 2
    assert {c["num_threads"] for c in phone.bench_calls} == {"1"}
    assert lat["channel_multiple"] == 16 and "--round-to 16" in lat["channel_multiple_evidence"]["why"]
    assert all(after % 16 == 0 for _, after in first.widths.values()) and first.widths
    assert lat["measured_ms"] < lat["dense_ms"]
    assert len(load_table(fp).points) == lat["timings_taken"]
    assert not [p for p in phone.files if p.startswith("/data/local/tmp/edgeprune")]

    calls = len(phone.bench_calls)
    again = _prune(spec)
    assert again.extra["latency"]["timings_taken"] == 0  # the phone's table came from the cache
    assert len(phone.bench_calls) == calls + 2  # only the dense and the pruned model were timed
