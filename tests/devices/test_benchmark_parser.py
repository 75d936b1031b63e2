"""benchmark_model log parsing on recorded outputs of every format (golden/README.md says where each comes from)."""

from __future__ import annotations

import pytest

from edgeprune.devices.benchmark_parser import (
    RunStats,
    parse_benchmark_output,
    parse_op_profile,
    strip_prefix,
    summary_latency,
)
from edgeprune.errors import EdgepruneError
from tests.devices.conftest import golden


def test_classic_with_percentiles_memory_and_peak_monitor() -> None:
    out = parse_benchmark_output(golden("classic_xnnpack.txt"))
    assert out.format == "tflite" and out.xnnpack_created
    assert out.init_ms == pytest.approx(17.187) and out.first_inference_ms == pytest.approx(35.123)
    assert out.warmup is not None and out.warmup.count == 5 and out.warmup.avg_ms == pytest.approx(30.9124)
    inf = out.inference
    assert inf is not None and inf.count == 50
    assert (inf.min_ms, inf.max_ms, inf.avg_ms) == pytest.approx((27.275, 31.899, 29.5034))
    assert (inf.p5_ms, inf.median_ms, inf.p95_ms, inf.std_ms) == pytest.approx((27.731, 29.46, 31.422, 1.09798))
    assert out.memory_line == "delta" and out.init_footprint_mb == pytest.approx(4.21094)
    assert out.overall_footprint_mb == pytest.approx(46.0859) and out.peak_memory_mb == pytest.approx(52.3828)
    assert out.vmrss_mb == 55 and out.model_size_mb == pytest.approx(16.9008)
    latency, notes = summary_latency(out)
    assert latency is not None and latency.n == 50
    assert latency.p50_ms == pytest.approx(29.46) and notes["p50_from"] == "median"
    assert latency.p90_ms == pytest.approx(31.422) and latency.p99_ms == pytest.approx(31.899)
    assert latency.min_ms <= latency.p50_ms <= latency.p90_ms <= latency.p99_ms <= latency.max_ms


def test_scientific_notation_and_all_same_warmup() -> None:
    out = parse_benchmark_output(golden("classic_sci_notation.txt"))
    assert out.inference is not None and out.inference.avg_ms == pytest.approx(2950.34)
    assert out.warmup_avg_ms == pytest.approx(3512.39) and out.first_inference_ms == pytest.approx(3512.391)
    assert out.warmup is not None and out.warmup.count == 1 and out.warmup.min_ms == out.warmup.max_ms == 3512.391
    assert out.memory_line is None and out.peak_memory_mb is None  # platform without memory info
    latency, notes = summary_latency(out)
    assert latency is not None and latency.p50_ms == pytest.approx(2950.34) and notes["p50_from"] == "mean"
    assert latency.p90_ms == latency.p99_ms == latency.max_ms == pytest.approx(3189.954)


def test_old_tool_without_prefix_legacy_memory_line_and_old_op_table() -> None:
    out = parse_benchmark_output(golden("classic_old_peak_memory.txt"))
    assert out.memory_line == "peak-legacy"
    assert (out.init_footprint_mb, out.overall_footprint_mb) == pytest.approx((3.23047, 11.7305))
    assert out.inference is not None and out.inference.count == 296
    assert [r.node_type for r in out.ops] == ["CONV_2D", "CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"]
    assert out.ops[0].avg_ms == pytest.approx(1.874) and out.ops[0].first_ms == pytest.approx(1.902)
    assert out.ops_by_type["CONV_2D"] == pytest.approx(3.171)
    split = out.split()
    assert split is not None and split["delegate_ms"] == 0 and split["cpu_nodes"] == 5


def test_logcat_threadtime_gpu_delegate_coverage_and_fallback() -> None:
    out = parse_benchmark_output(golden("logcat_benchmark_apk.txt"))
    assert out.format == "tflite" and out.init_ms == pytest.approx(915.672)
    assert out.inference is not None and out.inference.count == 253 and out.inference.median_ms == pytest.approx(3.969)
    (d,) = out.delegations
    assert (d.delegate, d.replaced_nodes, d.total_nodes, d.partitions) == ("TfLiteGpuDelegateV2", 64, 66, 2)
    assert any("remaining 2 operations will run on the CPU" in ln for ln in out.fallback_lines)
    assert any(ln.startswith("MEAN: Operation is not supported") for ln in out.errors)


def test_litert_compiled_model_block_uses_finer_stat_lines() -> None:
    out = parse_benchmark_output(golden("litert_compiled_model.txt"))
    assert out.format == "litert"
    assert out.init_ms == pytest.approx(2.90) and out.first_inference_ms == pytest.approx(0.28)
    assert out.warmup is not None and out.warmup.count == 3571
    inf = out.inference
    assert inf is not None and inf.count == 7142
    assert (inf.min_ms, inf.max_ms, inf.avg_ms) == pytest.approx((0.133, 0.187, 0.1402))  # µs stat line, not "0.13"
    assert out.throughput_mb_s == pytest.approx(335.21) and out.memory_line == "litert"
    assert (out.init_footprint_mb, out.overall_footprint_mb, out.peak_memory_mb) == pytest.approx((9.15, 12.41, 14.06))


def test_litert_python_twin_real_recording() -> None:
    out = parse_benchmark_output(golden("litert_python_x86.txt"))
    assert out.format == "litert" and out.fully_accelerated is True
    inf = out.inference
    assert inf is not None and inf.count == 50
    assert (inf.avg_ms, inf.min_ms, inf.max_ms, inf.median_ms, inf.p5_ms, inf.p95_ms, inf.std_ms) == pytest.approx(
        (0.49, 0.16, 12.32, 0.16, 0.16, 0.24, 1.80)
    )
    assert out.warmup is not None and out.warmup.count == 5 and out.init_ms == pytest.approx(5.86)
    assert out.errors == []  # "with error: ERROR: [...]" inside a WARNING line is not an error line


def test_op_profiling_table_gives_per_op_rows_and_delegate_cpu_split() -> None:
    out = parse_benchmark_output(golden("classic_op_profiling.txt"))
    assert [r.node_type for r in out.ops] == ["TfLiteXNNPackDelegate", "MEAN", "TfLiteXNNPackDelegate", "SOFTMAX"]
    assert [r.delegated for r in out.ops] == [True, False, True, False]
    assert out.ops[0].name == "[model/conv1;model/relu1;model/conv2;model/relu2]:12"
    assert out.ops[1].percent == pytest.approx(4.999)
    split = out.split()
    assert split is not None
    assert split["delegate_ms"] == pytest.approx(9.315 + 0.121) and split["cpu_ms"] == pytest.approx(0.498 + 0.027)
    assert split["delegate_fraction"] == pytest.approx(9.436 / 9.961)
    assert out.ops_by_type == pytest.approx({"TfLiteXNNPackDelegate": 9.436, "MEAN": 0.498, "SOFTMAX": 0.027})


def test_op_profile_csv_file_and_its_tabbed_twin_agree() -> None:
    csv = parse_op_profile(golden("op_profile.csv"))
    tabbed = parse_benchmark_output(golden("classic_op_profiling.txt"))
    assert [(r.node_type, r.name, r.avg_ms, r.delegated) for r in csv.ops] == [
        (r.node_type, r.name, r.avg_ms, r.delegated) for r in tabbed.ops
    ]


def test_prefix_stripping_variants() -> None:
    want = "count=50 first=1 curr=2 min=1 max=3 avg=2 std=1"
    for line in (want, f"INFO: {want}", f"I tflite  : {want}", f"I/tflite  ( 1234): {want}",
                 f"01-15 10:21:35.560  5123  5123 I tflite  : INFO: {want}",
                 f"INFO: [benchmark.cc:12] {want}"):  # fmt: skip
        assert strip_prefix(line) == want
    stats = RunStats.parse("count=7 first=1000 curr=1000 min=1000 max=1000 avg=1000 std=0 extra")
    assert stats.count == 7 and stats.avg_ms == 1.0


def test_crash_output_has_no_results() -> None:
    with pytest.raises(EdgepruneError, match="printed no results.*Benchmarking failed") as info:
        parse_benchmark_output(golden("crash_missing_op.txt"))
    assert "\n" not in str(info.value)
    with pytest.raises(EdgepruneError, match="empty output"):
        parse_benchmark_output("")
