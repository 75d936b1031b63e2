"""This machine as a profiling device: ai-edge-litert in a fresh subprocess per configuration."""

from __future__ import annotations

import os
import platform
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from edgeprune.devices.base import BenchSpec, Device, register_device
from edgeprune.devices.bench_result import (
    BENCH_SCRIPT,
    measurement_from_bench,
    parse_bench_result,
    stderr_tail,
)
from edgeprune.errors import EdgepruneError
from edgeprune.schemas import DeviceFingerprint, Measurement


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


@register_device
class HostDevice(Device):
    """The machine edgeprune runs on. Each (threads, delegate) configuration gets its own Python process."""

    kind = "host"
    timing_note = "this machine, ai-edge-litert in a fresh process per configuration"

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
                f"host benchmark of {where} failed ({how}): {stderr_tail(proc.stderr)}",
                "check that the file is a .tflite model that ai-edge-litert can load and run",
            )
        result = parse_bench_result(proc.stdout, proc.stderr)
        if result is None:
            raise EdgepruneError(
                f"host benchmark of {where} printed no result: {stderr_tail(proc.stderr)}",
                "run the command by hand: " + " ".join(self._command(model_path, threads, spec)),
            )
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
            measurements.append(measurement_from_bench(r, device, threads, artifact_name, artifact_sha256,
                                                       python=platform.python_version()))
        return measurements
