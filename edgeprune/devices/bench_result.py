"""The result of one ``_host_bench.py`` run, read the same way on every lane that runs it (host, ssh, qemu-arm64).

The script prints one JSON line with the raw samples; the lane passes its stdout/stderr here and gets the
parsed result, then one Measurement per configuration from :func:`measurement_from_bench`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgeprune.profile.stats import latency_stats
from edgeprune.schemas import DeviceFingerprint, Measurement

# Run by file path with -P (script dir not put on sys.path): ``-m edgeprune.devices._host_bench`` would also
# import edgeprune/__init__ and edgeprune.devices (pydantic, maybe torch later) into the measured process and
# inflate its RSS. The module still works with -m when run by hand.
BENCH_SCRIPT = Path(__file__).with_name("_host_bench.py")


def stderr_tail(stderr: str, lines: int = 3, chars: int = 500) -> str:
    """The last few non-empty stderr lines joined on one line (errors stay one line)."""
    kept = [ln.strip() for ln in stderr.splitlines() if ln.strip()][-lines:]
    tail = " | ".join(kept)
    return tail[-chars:] if tail else "(no stderr output)"


def parse_bench_result(stdout: str, stderr: str = "") -> dict[str, Any] | None:
    """The last JSON result line of a benchmark run (None if there is none), with ``xnnpack_delegate_created``
    read from the runtime's log on stderr."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and "samples_ms" in data:
            data["xnnpack_delegate_created"] = "XNNPACK delegate" in stderr
            return data
    return None


def measurement_from_bench(r: dict[str, Any], device: DeviceFingerprint, threads: int, name: str, sha: str,
                           emulated: bool = False, **extra: Any) -> Measurement:  # fmt: skip
    """A Measurement from one parsed benchmark result.

    ``emulated``: timing_meaningful=False, and no init/first-inference/memory fields at all (they would be
    the emulator's numbers); the raw values stay in ``extra`` under ``emulated_*`` keys.
    """
    rss = {key: r[key] for key in ("rss_before_mb", "rss_after_load_mb", "peak_rss_mb", "baseline_rss_mb",
                                   "model_peak_mb", "memory_method") if key in r}  # fmt: skip
    return Measurement(
        artifact_name=name, artifact_sha256=sha, device=device, runtime=f"ai-edge-litert {r['runtime_version']}",
        threads=threads, delegate=r["delegate"], warmup=r["warmup"], runs=len(r["samples_ms"]),
        latency=latency_stats(r["samples_ms"]), timing_meaningful=not emulated,
        init_ms=None if emulated else r["init_ms"], first_inference_ms=None if emulated else r["first_inference_ms"],
        peak_rss_mb=None if emulated else r["peak_rss_mb"],
        load_delta_mb=None if emulated else r["rss_after_load_mb"] - r["rss_before_mb"],
        baseline_rss_mb=None if emulated else r.get("baseline_rss_mb"),
        model_peak_mb=None if emulated else r.get("model_peak_mb"),
        extra={**({"emulated_process_memory_mb": rss, "emulated_timings_ms": {
                   "init_ms": r["init_ms"], "first_inference_ms": r["first_inference_ms"]}} if emulated else rss),
               "inputs": r["inputs"], "outputs": r["outputs"], "outputs_finite": r["outputs_finite"],
               "xnnpack_delegate_created": r["xnnpack_delegate_created"], **extra},
    )  # fmt: skip
