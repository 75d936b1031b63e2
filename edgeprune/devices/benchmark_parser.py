"""Parse what TFLite / LiteRT ``benchmark_model`` prints (android.md §5.3) into numbers.

Handled: the classic tool ("Inference timings in us", ``count=… avg=2.95034e+06`` stat lines, optional
``p5= median= p95=``, "(all same)"), the LiteRT CompiledModel "BENCHMARK RESULTS" block (and its Python
twin), C++ scientific notation, ``INFO:``/``[file:line]`` prefixes or none, logcat prefixes (threadtime, brief,
tag), both memory lines ("Memory footprint delta …" and the older "Peak memory footprint (MB): …"), the peak
monitor and VmRSS lines, delegate coverage ("Replacing N out of M node(s) …") and CPU fallback lines, and
op-profiling tables (tab-separated or CSV, with or without the [start] column) → per-op rows plus a
delegate/CPU time split. Times are returned in milliseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from edgeprune.errors import EdgepruneError
from edgeprune.schemas import LatencyStats, nonfinite_path

NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf"

_PREFIXES = [
    re.compile(r"^\d\d-\d\d \d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+\s+[VDIWEF]\s+[^:]*?:\s?"),  # logcat threadtime
    re.compile(r"^[VDIWEF]/[^(:]+\(\s*\d+\):\s?"),  # logcat brief: I/tflite  ( 1234): ...
    re.compile(r"^[VDIWEF]\s+[\w.\-]+\s*:\s"),  # logcat tag: I tflite  : ...
    re.compile(r"^(?:INFO|WARNING|WARN|ERROR|VERBOSE|DEBUG): ?"),  # TFLite minimal logger
    re.compile(r"^\[[\w./\-]+:\d+\] ?"),  # LiteRT [file.h:123]
]


_ERROR_LINE = re.compile(  # "ERROR:" at the start (after any logcat prefix), or a logcat line of level E
    r"^(?:\d\d-\d\d [\d:.]+\s+\d+\s+\d+\s+[VDIWF]\s+[^:]*?:\s?|[VDIWF]/[^(:]+\(\s*\d+\):\s?)?ERROR:"
    r"|^\d\d-\d\d [\d:.]+\s+\d+\s+\d+\s+E\s|^E/|^E\s+[\w.\-]+\s*:\s"
)


def strip_prefix(line: str) -> str:
    """Remove logcat / logger prefixes (they can stack: logcat, then INFO:, then [file:line])."""
    line = line.rstrip("\r\n")
    changed = True
    while changed:
        changed = False
        for rx in _PREFIXES:
            m = rx.match(line)
            if m and m.end() > 0:
                line, changed = line[m.end() :], True
    return line


def _f(text: str | None) -> float | None:
    return None if text is None else float(text)


@dataclass
class RunStats:
    """One ``count=…`` line of the classic tool, converted from microseconds to milliseconds."""

    count: int
    first_ms: float | None = None
    curr_ms: float | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    avg_ms: float | None = None
    std_ms: float | None = None
    p5_ms: float | None = None
    median_ms: float | None = None
    p95_ms: float | None = None

    @classmethod
    def parse(cls, text: str) -> RunStats:
        pairs = dict(re.findall(rf"(\w+)=({NUM})", text))
        st = cls(count=int(float(pairs.pop("count"))))
        vals = {k: float(v) / 1000.0 for k, v in pairs.items()}
        for key in ("first", "curr", "min", "max", "avg", "std", "p5", "median", "p95"):
            if key in vals:
                setattr(st, f"{key}_ms", vals[key])
        if "(all same)" in text or (st.count == 1 and st.min_ms is None):
            st.min_ms = st.max_ms = st.avg_ms = st.first_ms = st.curr_ms
            st.std_ms = 0.0
        return st


@dataclass
class OpRow:
    node_type: str
    name: str
    avg_ms: float
    first_ms: float | None = None
    percent: float | None = None
    times_called: int | None = None
    mem_kb: float | None = None
    delegated: bool = False


@dataclass
class Delegation:
    delegate: str
    replaced_nodes: int
    total_nodes: int
    partitions: int


@dataclass
class BenchmarkOutput:
    """Everything recognised in one benchmark_model log; absent values stay None."""

    format: str  # "tflite" (classic) | "litert" (CompiledModel block)
    init_ms: float | None = None
    first_inference_ms: float | None = None
    warmup_avg_ms: float | None = None
    warmup: RunStats | None = None
    inference: RunStats | None = None
    model_size_mb: float | None = None
    memory_line: str | None = None  # "delta" | "peak-legacy" | "litert"
    init_footprint_mb: float | None = None
    overall_footprint_mb: float | None = None
    peak_memory_mb: float | None = None
    vmrss_mb: float | None = None
    throughput_mb_s: float | None = None
    fully_accelerated: bool | None = None
    xnnpack_created: bool = False
    delegations: list[Delegation] = field(default_factory=list)
    fallback_lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    ops: list[OpRow] = field(default_factory=list)  # regular-run "Run Order" table
    ops_by_type: dict[str, float] = field(default_factory=dict)  # "Summary by node type": avg ms per run

    def split(self) -> dict[str, Any] | None:
        """Time per run inside delegate kernels vs on the CPU fallback, from the op-profiling table."""
        if not self.ops:
            return None
        dele = sum(r.avg_ms for r in self.ops if r.delegated)
        cpu = sum(r.avg_ms for r in self.ops if not r.delegated)
        total = dele + cpu
        return {"delegate_ms": dele, "cpu_ms": cpu, "delegate_fraction": dele / total if total > 0 else None,
                "delegate_nodes": sum(r.delegated for r in self.ops),
                "cpu_nodes": sum(not r.delegated for r in self.ops)}  # fmt: skip

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly dict for ``Measurement.extra``."""
        out = {k: v for k, v in self.__dict__.items() if k not in ("ops", "warmup", "inference", "delegations")}
        out["inference"] = self.inference.__dict__ if self.inference else None
        out["warmup"] = self.warmup.__dict__ if self.warmup else None
        out["delegations"] = [d.__dict__ for d in self.delegations]
        out["ops"] = [r.__dict__ for r in self.ops]
        out["delegate_cpu_split"] = self.split()
        return out


_COLUMNS = {"node type": "node_type", "first": "first_ms", "avg ms": "avg_ms", "avg_ms": "avg_ms", "%": "percent",
            "avg %": "percent", "mem kb": "mem_kb", "times called": "times_called", "name": "name",
            "count": "count", "start": "start", "cdf%": "cdf", "cdf %": "cdf"}  # fmt: skip


def _header(line: str) -> list[str] | None:
    """Column keys of a table header line (tabbed "[node type]…" or CSV "node type, …"), else None."""
    s = line.strip()
    if s.startswith("[node type]") or s.startswith("[Node type]"):
        return [_COLUMNS.get(c.strip().strip("[]").lower(), c) for c in line.split("\t") if c.strip()]
    if s.lower().startswith("node type,"):
        return [_COLUMNS.get(c.strip().lower(), c.strip()) for c in s.split(",")]
    return None


def _cells(line: str, ncols: int, csv: bool) -> list[str]:
    parts = [p.strip() for p in (line.split(",") if csv else line.split("\t"))]
    if not csv and parts and parts[0] == "":
        parts = parts[1:]
    if len(parts) > ncols:  # names may contain the separator
        parts = parts[: ncols - 1] + [("," if csv else "\t").join(parts[ncols - 1 :]).strip()]
    return parts


def _is_delegate(node_type: str, name: str) -> bool:
    return "delegate" in node_type.lower() or name.startswith("Delegate/")


def _parse_tables(lines: list[str], out: BenchmarkOutput, section: str = "") -> None:
    title, cols, csv = "", None, False
    for line in lines:
        s = line.strip()
        if "Profiling Info for Benchmark Initialization" in s:
            section = "init"
        elif "Profiling Info for Regular Benchmark Runs" in s:
            section = "regular"
        elif s.startswith("Delegate internal"):
            section = "delegate-internal"
        elif s.startswith("=====") and s.endswith("====="):
            title, cols = s.strip("= ").strip(), None
        elif (hdr := _header(line)) is not None:
            cols, csv = hdr, "," in s and not s.startswith("[")
        elif cols and s and section == "regular" and not s.startswith(("Timings", "Memory (bytes)", "Number of")):
            cells = _cells(line, len(cols), csv)
            if len(cells) < len(cols):
                continue
            row = dict(zip(cols, cells, strict=False))
            try:
                avg = float(row["avg_ms"])
            except (KeyError, ValueError):
                continue
            if title == "Run Order":
                name, ntype = row.get("name", ""), row.get("node_type", "")
                out.ops.append(OpRow(
                    node_type=ntype, name=name, avg_ms=avg, first_ms=_f(row.get("first_ms")),
                    percent=_f(row.get("percent", "").rstrip("%") or None),
                    times_called=int(float(row["times_called"])) if row.get("times_called") else None,
                    mem_kb=_f(row.get("mem_kb")), delegated=_is_delegate(ntype, name),
                ))  # fmt: skip
            elif title == "Summary by node type":
                out.ops_by_type[row.get("node_type", "?")] = avg
        elif not s:
            cols = None


def _parse_litert(text: str, out: BenchmarkOutput) -> None:
    def grab(label: str, suffix: str = "") -> re.Match[str] | None:
        return re.search(rf"^{label}:\s*({NUM})\s*(?:ms)?{suffix}", text, flags=re.M)

    if m := grab(r"Model initialization"):
        out.init_ms = float(m.group(1))
    if m := grab(r"Warmup \(first\)"):
        out.first_inference_ms = float(m.group(1))
    if m := grab(r"Warmup \(avg\)", r"\s*\((\d+) runs\)"):
        out.warmup_avg_ms = float(m.group(1))
        out.warmup = RunStats(count=int(m.group(2)), avg_ms=out.warmup_avg_ms, first_ms=out.first_inference_ms)
    if m := grab(r"Inference \(avg\)", r"\s*\((\d+) runs\)"):
        inf = RunStats(count=int(m.group(2)), avg_ms=float(m.group(1)))
        for key, attr in (("min", "min_ms"), ("max", "max_ms"), ("std", "std_ms"), ("median", "median_ms"),
                          ("p5", "p5_ms"), ("p95", "p95_ms")):  # fmt: skip
            if mm := grab(rf"Inference \({key}\)"):
                setattr(inf, attr, float(mm.group(1)))
        if mm := re.search(rf"Inference \(min\)/\(max\)/\(std\):\s*({NUM})\D+?({NUM})\D+?({NUM})", text):
            inf.min_ms, inf.max_ms, inf.std_ms = (float(g) for g in mm.groups())
        out.inference = inf
    if m := re.search(rf"^Throughput:\s*({NUM})\s*MB/s", text, flags=re.M):
        out.throughput_mb_s = float(m.group(1))
    for label, attr in (("Init footprint", "init_footprint_mb"), ("Overall footprint", "overall_footprint_mb"),
                        ("Peak memory", "peak_memory_mb")):  # fmt: skip
        if m := re.search(rf"^{label}:\s*({NUM})\s*MB", text, flags=re.M):
            setattr(out, attr, float(m.group(1)))
            out.memory_line = "litert"
    if m := re.search(r"^Fully accelerated:\s*(\w+)", text, flags=re.M):
        out.fully_accelerated = m.group(1).lower() in ("true", "yes", "1")


def _merge_stat_lines(lines: list[str], out: BenchmarkOutput) -> None:
    """The C++ LiteRT tool also prints the classic µs stat lines: take their finer min/max/std/first."""
    stats = [RunStats.parse(s) for s in lines if re.match(r"count=\d", s)]
    if len(stats) >= 2 and out.inference is not None and stats[1].count == out.inference.count:
        fine = stats[1]
        for attr in ("first_ms", "curr_ms", "min_ms", "max_ms", "std_ms", "p5_ms", "median_ms", "p95_ms"):
            if getattr(fine, attr) is not None:
                setattr(out.inference, attr, getattr(fine, attr))
        if fine.avg_ms is not None:
            out.inference.avg_ms = fine.avg_ms


def _parse_classic(text: str, lines: list[str], out: BenchmarkOutput) -> None:
    if m := re.search(
        rf"Inference timings in us: Init: ({NUM}), First inference: ({NUM}), Warmup \(avg\): ({NUM}), "
        rf"Inference \(avg\): ({NUM})", text
    ):
        out.init_ms, out.first_inference_ms, out.warmup_avg_ms, avg = (float(g) / 1000.0 for g in m.groups())
    else:
        avg = None
    stats = [RunStats.parse(s) for s in lines if re.match(r"count=\d", s)]
    if len(stats) >= 2:
        out.warmup, out.inference = stats[0], stats[1]
    elif len(stats) == 1:
        out.inference = stats[0]
    if out.inference is not None and out.inference.avg_ms is None and avg is not None:
        out.inference.avg_ms = avg
    if m := re.search(rf"Memory footprint delta from the start of the tool \(MB\): init=({NUM}) overall=({NUM})", text):
        out.memory_line = "delta"
    elif m := re.search(rf"Peak memory footprint \(MB\): init=({NUM}) overall=({NUM})", text):
        out.memory_line = "peak-legacy"
    if m:
        out.init_footprint_mb, out.overall_footprint_mb = float(m.group(1)), float(m.group(2))
    if m := re.search(rf"Overall peak memory footprint \(MB\) via periodic monitoring: ({NUM})", text):
        out.peak_memory_mb = float(m.group(1))
    if m := re.search(rf"^- VmRSS\s*:\s*({NUM})\s*MB", text, flags=re.M):
        out.vmrss_mb = float(m.group(1))


def parse_benchmark_output(text: str) -> BenchmarkOutput:
    """Parse one benchmark_model log (stdout+stderr, or logcat); raises if it holds no results."""
    lines = [strip_prefix(ln) for ln in text.splitlines()]
    clean = "\n".join(ln.strip() for ln in lines)
    if "BENCHMARK RESULTS" in clean:
        out = BenchmarkOutput(format="litert")
        _parse_litert(clean, out)
        _merge_stat_lines([ln.strip() for ln in lines], out)
    elif "Inference timings in us" in clean:
        out = BenchmarkOutput(format="tflite")
        _parse_classic(clean, [ln.strip() for ln in lines], out)
    else:
        errors = [ln.strip() for ln in lines if re.search(r"error|fail|abort", ln, re.I)]
        tail = " | ".join(errors[-2:] or [ln.strip() for ln in lines if ln.strip()][-2:]) or "(empty output)"
        raise EdgepruneError(f"benchmark_model printed no results: {tail[-300:]}",
                             "run the same command with adb shell by hand and check the model and flags")  # fmt: skip
    if m := re.search(rf"The input model file size \(MB\): ({NUM})", clean):
        out.model_size_mb = float(m.group(1))
    delegation_re = r"Replacing (\d+) out of (\d+) node\(s\) with delegate \(([^)]+)\) node, yielding (\d+)"
    for m in re.finditer(delegation_re, clean):
        out.delegations.append(Delegation(m.group(3), int(m.group(1)), int(m.group(2)), int(m.group(4))))
    out.xnnpack_created = "XNNPACK delegate" in clean
    out.fallback_lines = [ln.strip() for ln in lines if re.search(
        r"will not be executed by the delegate|not supported by .*delegate|will run on the CPU", ln, re.I)]  # fmt: skip
    out.errors = [strip_prefix(raw).strip() for raw in text.splitlines() if _ERROR_LINE.search(raw)]
    _parse_tables(lines, out)
    return out


def parse_op_profile(text: str) -> BenchmarkOutput:
    """Op-profiling tables alone, e.g. the file written by ``--profiling_output_csv_file`` (CSV or tabbed)."""
    lines = [strip_prefix(ln) for ln in text.splitlines()]
    out = BenchmarkOutput(format="op-profile")
    _parse_tables(lines, out, section="" if "Profiling Info for" in text else "regular")
    return out


def summary_latency(out: BenchmarkOutput) -> tuple[LatencyStats | None, dict[str, Any]]:
    """LatencyStats from the tool's summary, with notes on what is exact.

    benchmark_model prints no per-run samples, so ``latency_stats`` cannot be applied. Exact: n, mean, std
    (population, like ours), min, max. ``p50`` is the tool's median when printed, else its mean. ``p90`` is
    its p95 when printed, else its max, and ``p99`` is its max: both are upper bounds, never underestimates.
    ``trimmed_mean`` is the plain mean. The notes dict (stored in ``extra``) says which of these applied.
    """
    inf = out.inference
    if inf is None or inf.avg_ms is None or inf.count < 1:
        return None, {"latency_source": "none: the tool printed no inference statistics"}
    if nonfinite_path([inf.avg_ms, inf.min_ms, inf.max_ms, inf.median_ms, inf.p95_ms, inf.std_ms]) is not None:
        return None, {"latency_source": "none: the tool printed non-finite statistics (nan/inf)"}
    mn = inf.min_ms if inf.min_ms is not None else inf.avg_ms
    mx = inf.max_ms if inf.max_ms is not None else inf.avg_ms
    p50 = inf.median_ms if inf.median_ms is not None else inf.avg_ms
    p90 = inf.p95_ms if inf.p95_ms is not None else mx
    stats = LatencyStats(n=inf.count, mean_ms=inf.avg_ms, std_ms=inf.std_ms or 0.0, min_ms=mn, max_ms=mx,
                         p50_ms=p50, p90_ms=p90, p99_ms=mx, trimmed_mean_ms=inf.avg_ms)  # fmt: skip
    notes = {
        "latency_source": "benchmark_model summary (no per-run samples)",
        "p50_from": "median" if inf.median_ms is not None else "mean",
        "p90_from": "p95 (upper bound)" if inf.p95_ms is not None else "max (upper bound)",
        "p99_from": "max (upper bound)",
        "trimmed_mean_from": "mean",
    }
    return stats, notes
