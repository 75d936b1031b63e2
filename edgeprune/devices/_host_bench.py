"""Time one .tflite model in THIS process and print one JSON line (run by HostDevice in a fresh subprocess).

A fresh process per configuration keeps memory numbers honest (nothing left over from earlier loads or from
torch) and turns a native crash of the runtime (e.g. SIGABRT in ``allocate_tensors``) into a clean error in
the parent. Only the standard library, numpy and ai_edge_litert are imported here.

Usage: python -P path/to/_host_bench.py --model PATH --threads N --warmup W --runs R [--no-xnnpack]
   (or python -m edgeprune.devices._host_bench ..., which also loads the edgeprune package into the process)
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import time
from typing import Any

import numpy as np

RESULT_SCHEMA = "edgeprune-host-bench/1"


def current_rss_mb() -> float:
    """Resident memory of this process now, in MiB (psutil when available, else /proc)."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB.

    Linux: VmHWM belongs to this address space, so it starts afresh at exec. ``ru_maxrss`` does not: a child
    forked from a large parent (a torch pipeline) would report the parent's size.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return max(int(line.split()[1]) / 1024, current_rss_mb())
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mb = peak / 2**20 if sys.platform == "darwin" else peak / 1024
    return max(peak_mb, current_rss_mb())


def reset_peak() -> bool:
    """Start a new peak window: the kernel sets VmHWM to the current RSS when "5" is written to
    /proc/self/clear_refs (Linux 4.0+). False where that file is missing or not writable."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def make_input(shape: list[int], dtype: Any, rng: np.random.Generator) -> np.ndarray:
    """A deterministic random tensor: normal floats, full-range small integers (quantized inputs), else 0/1."""
    shape = [max(int(d), 1) for d in shape]
    dt = np.dtype(dtype)
    if np.issubdtype(dt, np.floating):
        return rng.standard_normal(shape).astype(dt)
    if dt in (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16)):
        info = np.iinfo(dt)
        return rng.integers(info.min, int(info.max) + 1, size=shape, dtype=dt)
    if dt == np.dtype(bool):
        return rng.random(shape) < 0.5
    return rng.integers(0, 2, size=shape).astype(dt)


def _describe(details: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"name": d["name"], "shape": [int(s) for s in d["shape"]], "dtype": np.dtype(d["dtype"]).name}
        for d in details
    ]


def run(model: str, threads: int, warmup: int, runs: int, xnnpack: bool) -> dict[str, Any]:
    import ai_edge_litert
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # The baseline: this process with numpy and the runtime imported, no model. Its peak so far is kept as part
    # of the process peak; then the peak window restarts so VmHWM afterwards is the peak caused by the model.
    # Everything else the run needs is set up first: numpy 2 imports np.random lazily, and that alone is ~6 MB.
    rng = np.random.default_rng(0)
    gc.collect()
    process_peak_before = peak_rss_mb()
    windowed = reset_peak()
    rss_before = current_rss_mb()
    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    t0 = time.perf_counter_ns()
    interp = Interpreter(model_path=model, num_threads=threads, experimental_op_resolver_type=resolver)
    interp.allocate_tensors()
    init_ns = time.perf_counter_ns() - t0
    rss_after_load = current_rss_mb()

    inputs = interp.get_input_details()
    for d in inputs:
        interp.set_tensor(d["index"], make_input(list(d["shape"]), d["dtype"], rng))

    t0 = time.perf_counter_ns()
    interp.invoke()
    first_ns = time.perf_counter_ns() - t0
    for _ in range(warmup):
        interp.invoke()
    samples_ns = []
    gc.disable()
    try:
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            interp.invoke()
            samples_ns.append(time.perf_counter_ns() - t0)
    finally:
        gc.enable()

    rss_after_runs = current_rss_mb()
    window_peak = peak_rss_mb()
    # with a reset window VmHWM is exact (it sees transient peaks inside allocate/invoke); without one only the
    # sampled RSS after load and after the runs is known, a lower bound of the model's peak
    model_peak = (window_peak if windowed else max(rss_after_load, rss_after_runs)) - rss_before

    outputs = interp.get_output_details()
    finite = all(bool(np.all(np.isfinite(interp.get_tensor(d["index"]).astype(np.float64)))) for d in outputs)
    return {
        "schema": RESULT_SCHEMA,
        "runtime_version": getattr(ai_edge_litert, "__version__", "unknown"),
        "threads": threads,
        "delegate": "xnnpack" if xnnpack else "none",
        "warmup": warmup,
        "runs": runs,
        "init_ms": init_ns / 1e6,
        "first_inference_ms": first_ns / 1e6,
        "samples_ms": [s / 1e6 for s in samples_ns],
        "rss_before_mb": rss_before,
        "rss_after_load_mb": rss_after_load,
        "peak_rss_mb": max(process_peak_before, window_peak),
        "baseline_rss_mb": rss_before,
        "model_peak_mb": max(model_peak, 0.0),
        "memory_method": "vmhwm-window" if windowed else "rss-samples",
        "inputs": _describe(inputs),
        "outputs": _describe(outputs),
        "outputs_finite": finite,
        "pid": os.getpid(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--no-xnnpack", action="store_true")
    a = ap.parse_args(argv)
    try:
        result = run(a.model, a.threads, a.warmup, a.runs, xnnpack=not a.no_xnnpack)
    except Exception as exc:  # reported to the parent as the last stderr line; native crashes show as signals
        sys.stderr.write(f"{type(exc).__name__}: {exc}\n")
        return 2
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
