"""This machine as a profiling device: ai-edge-litert in a fresh subprocess per configuration."""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from edgeprune.devices.base import BenchSpec, Device, register_device
from edgeprune.errors import EdgepruneError
from edgeprune.profile.stats import latency_stats
from edgeprune.schemas import DeviceFingerprint, Measurement

# Run by file path with -P (script dir not put on sys.path): ``-m edgeprune.devices._host_bench`` would also
# import edgeprune/__init__ and edgeprune.devices (pydantic, maybe torch later) into the measured process and
# inflate its RSS. The module still works with -m when run by hand.
BENCH_SCRIPT = Path(__file__).with_name("_host_bench.py")


def _cpu_model() -> str:
    """CPU name from /proc/cpuinfo (x86 "model name", ARM "Hardware"/"Processor"), else platform.processor()."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    for key in ("model name", "Hardware", "Processor", "cpu model"):
        for line in text.splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key and value.strip():
                return value.strip()
    return platform.processor() or platform.machine()


def _governor() -> str:
    try:
        return Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").read_text().strip()
    except OSError:
        return ""


def _stderr_tail(stderr: str, lines: int = 3, chars: int = 500) -> str:
    """The last few non-empty stderr lines joined on one line (errors stay one line)."""
    kept = [ln.strip() for ln in stderr.splitlines() if ln.strip()][-lines:]
    tail = " | ".join(kept)
    return tail[-chars:] if tail else "(no stderr output)"


def _parse_result(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(data, dict) and "samples_ms" in data:
                return data
    return None


@register_device
class HostDevice(Device):
    """The machine edgeprune runs on. Each (threads, delegate) configuration gets its own Python process."""

    kind = "host"

    def __init__(self, timeout_s: float = 600.0) -> None:
        self.timeout_s = timeout_s

    def fingerprint(self) -> DeviceFingerprint:
        affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        return DeviceFingerprint(
            kind=self.kind,
            id=socket.gethostname(),
            model=_cpu_model(),
            abi=platform.machine(),
            os=f"{platform.system()} {platform.release()}",
            cores=os.cpu_count(),
            cpu_governor=_governor(),
            usable_cores=affinity,
            python=platform.python_version(),
        )

    def _command(self, model_path: Path, threads: int, spec: BenchSpec) -> list[str]:
        if spec.delegate not in ("", "xnnpack", "none"):
            raise EdgepruneError(f"the host device cannot run the '{spec.delegate}' delegate",
                                 "use --device adb[:SERIAL] for gpu/nnapi, or xnnpack/none on the host")
        cmd = [sys.executable, "-P", str(BENCH_SCRIPT), "--model", str(model_path), "--threads", str(threads)]
        cmd += ["--warmup", str(spec.warmup), "--runs", str(spec.runs)]
        return cmd + ([] if spec.use_xnnpack else ["--no-xnnpack"])

    def run_one(self, model_path: Path, threads: int, spec: BenchSpec) -> dict[str, Any]:
        """Run one configuration in a fresh subprocess and return its parsed JSON result."""
        where = f"{model_path.name} (threads={threads}, delegate={spec.delegate})"
        try:
            proc = subprocess.run(
                self._command(model_path, threads, spec),
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
            )
        except subprocess.TimeoutExpired:
            raise EdgepruneError(
                f"host benchmark of {where} did not finish within {self.timeout_s:.0f} s",
                "use fewer runs or a smaller model, or raise HostDevice(timeout_s=...)",
            ) from None
        if proc.returncode != 0:
            how = f"exit code {proc.returncode}"
            if proc.returncode < 0:
                try:
                    how = f"killed by {signal.Signals(-proc.returncode).name}"
                except ValueError:
                    how = f"killed by signal {-proc.returncode}"
            raise EdgepruneError(
                f"host benchmark of {where} failed ({how}): {_stderr_tail(proc.stderr)}",
                "check that the file is a .tflite model that ai-edge-litert can load and run",
            )
        result = _parse_result(proc.stdout)
        if result is None:
            raise EdgepruneError(
                f"host benchmark of {where} printed no result: {_stderr_tail(proc.stderr)}",
                "run the command by hand: " + " ".join(self._command(model_path, threads, spec)),
            )
        result["xnnpack_delegate_created"] = "XNNPACK delegate" in proc.stderr
        return result

    def benchmark(
        self, model_path: Path, spec: BenchSpec, artifact_name: str, artifact_sha256: str
    ) -> list[Measurement]:
        model_path = Path(model_path)
        if not model_path.is_file():
            raise EdgepruneError(
                f"model file not found: {model_path}", "pass the path of an exported .tflite file"
            )
        device = self.fingerprint()
        measurements = []
        for threads in spec.threads:
            r = self.run_one(model_path, threads, spec)
            measurements.append(
                Measurement(
                    artifact_name=artifact_name,
                    artifact_sha256=artifact_sha256,
                    device=device,
                    runtime=f"ai-edge-litert {r['runtime_version']}",
                    threads=threads,
                    delegate=r["delegate"],
                    warmup=r["warmup"],
                    runs=len(r["samples_ms"]),
                    latency=latency_stats(r["samples_ms"]),
                    init_ms=r["init_ms"],
                    first_inference_ms=r["first_inference_ms"],
                    peak_rss_mb=r["peak_rss_mb"],
                    load_delta_mb=r["rss_after_load_mb"] - r["rss_before_mb"],
                    extra={
                        "rss_before_mb": r["rss_before_mb"],
                        "rss_after_load_mb": r["rss_after_load_mb"],
                        "inputs": r["inputs"],
                        "outputs": r["outputs"],
                        "outputs_finite": r["outputs_finite"],
                        "xnnpack_delegate_created": r["xnnpack_delegate_created"],
                        "python": platform.python_version(),
                    },
                )
            )
        return measurements
