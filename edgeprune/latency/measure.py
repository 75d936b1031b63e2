"""Time single layers on a device lane: export each as a tiny .tflite and run the lane's own benchmark.

Cheap by construction: a few widths per axis (:func:`candidate_widths`), identical shapes measured once, few runs
each. Every timing goes through the device's ``benchmark`` (host: ai-edge-litert in a fresh process; adb:
benchmark_model on the phone; ssh: the board's runtime), so the table describes that lane's real runtime.
"""

from __future__ import annotations

import importlib.metadata
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from edgeprune.devices.adb import ENV_BINARY
from edgeprune.devices.base import BenchSpec, Device, open_device
from edgeprune.errors import EdgepruneError
from edgeprune.fsutil import sha256_file
from edgeprune.latency.source import refuse_untimed
from edgeprune.latency.table import Axis, LatencyTable, LayerShape, Point

WIDTH_FRACTIONS = (1.0, 0.75, 0.5, 0.25)  # measured widths per axis (interpolated between)
PROBE_BASE = 32  # the step probe: a 3x3 conv, 32 input channels at 32x32, output widths just above 32
PROBE_OFFSETS = (0, 1, 4, 8, 16)
STEPS = (16, 8, 4, 2)


def candidate_widths(full: int, step: int = 1) -> list[int]:
    """The widths measured on one axis: full, and about 3/4, 1/2 and 1/4 of it on multiples of ``step`` (the
    only widths the allocation uses); just [full] when the axis is no wider than one step."""
    if full <= step:
        return [full]
    return sorted({full} | {max(step, round(full * f / step) * step) for f in WIDTH_FRACTIONS[1:]}, reverse=True)


def layer_module(shape: LayerShape, cin: int, cout: int) -> tuple[nn.Module, torch.Tensor]:
    """A one-layer module of ``shape`` at (cin, cout) channels and its example input (batch 1, NCHW)."""
    torch.manual_seed(0)
    if shape.op == "linear":
        return nn.Sequential(nn.Flatten(), nn.Linear(cin, cout)).eval(), torch.randn(1, cin, 1, 1)
    groups = cout if shape.op == "dwconv" else 1
    if shape.op == "dwconv":
        cin = cout
    conv = nn.Conv2d(cin, cout, shape.kernel, shape.stride, shape.padding, groups=groups, bias=True)
    return conv.eval(), torch.randn(1, cin, shape.h, shape.w)


@dataclass
class LaneTimer:
    """Exports modules to .tflite and times them on one device; ``count`` is the number of timings taken."""

    device: Device
    spec_text: str
    threads: int = 1
    runs: int = 15
    warmup: int = 3
    precision: str = "fp32"
    count: int = 0
    _tmp: Any = field(default=None, repr=False)

    @classmethod
    def open(cls, spec: str, threads: int = 1, runs: int = 15) -> LaneTimer:
        device = open_device(spec)
        refuse_untimed(device, spec)
        return cls(device, spec, threads=threads, runs=runs)

    def fingerprint(self) -> dict[str, Any]:
        """What a timing depends on: the lane, its hardware and OS, its runtime, threads and precision."""
        fp = self.device.fingerprint()
        return {"kind": fp.kind, "model": fp.model, "soc": fp.soc, "abi": fp.abi, "os": fp.os,
                "runtime": runtime_tag(self.device), "threads": self.threads, "precision": self.precision,
                "delegate": "xnnpack"}

    def time_module(self, module: nn.Module, example: torch.Tensor, name: str, runs: int | None = None) -> float:
        """Export ``module`` (fp32 .tflite, the project's exporter) and return its median ms on the lane."""
        from edgeprune.export import ExportRequest, get_exporter

        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="edgeprune-latency-")
        out = Path(self._tmp.name)
        record = get_exporter("tflite").export(ExportRequest(model=module, example_input=example,
                                                             precision=self.precision, out_dir=out, name=name))
        path = out / record.file
        spec = BenchSpec(threads=[self.threads], warmup=self.warmup, runs=runs or self.runs)
        ms = self.device.benchmark(path, spec, name, record.sha256)
        path.unlink(missing_ok=True)
        self.count += 1
        if not ms or ms[0].latency is None:
            raise EdgepruneError(f"the {self.device.kind} lane returned no latency for {name}",
                                 "check the device with: edgeprune profile FILE.tflite --device " + self.spec_text)
        return float(ms[0].latency.p50_ms)

    def time_point(self, shape: LayerShape, axis: Axis, width: int) -> Point:
        cin = width if axis == "in" else shape.cin
        cout = width if axis == "out" or shape.op == "dwconv" else shape.cout
        module, example = layer_module(shape, cin, cout)
        name = f"layer{self.count}"
        return Point(shape.key(), axis, width, self.time_module(module, example, name), runs=self.runs,
                     source=f"edgeprune-measure:{self.device.kind}")

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def runtime_tag(device: Device) -> str:
    """The runtime a lane times with: the litert version on the host, the benchmark binary's hash on adb."""
    if device.kind == "host":
        try:
            return "ai-edge-litert " + importlib.metadata.version("ai-edge-litert")
        except importlib.metadata.PackageNotFoundError:
            return "ai-edge-litert unknown"
    binary = (getattr(device, "options", None) or {}).get("binary") or os.environ.get(ENV_BINARY)
    if binary and Path(binary).expanduser().is_file():
        return "benchmark_model " + sha256_file(Path(binary).expanduser())[:12]
    return f"{device.kind} runtime"


def fill(table: LatencyTable, needs: dict[LayerShape, set[Axis]], timer: LaneTimer, step: int = 1) -> int:
    """Measure every (shape, axis, width) the table lacks; returns how many timings were taken.

    A shape none of whose axes is wider than one ``step`` is skipped: its latency cannot change.
    """
    before = timer.count
    for shape, axes in sorted(needs.items(), key=lambda kv: kv[0].key()):
        widths = {axis: candidate_widths(shape.full(axis), step) for axis in sorted(axes)}
        if all(len(w) == 1 for w in widths.values()):
            continue
        for axis, ws in widths.items():
            for width in ws:
                if not table.has(shape, axis, width):
                    table.add(timer.time_point(shape, axis, width))
    return timer.count - before


def probe_step(timer: LaneTimer) -> dict[str, Any]:
    """Time a 3x3 conv at output widths just above a multiple of 16 and find the channel step of the runtime."""
    shape = LayerShape("conv", PROBE_BASE, PROBE_BASE, 3, 1, 1, 32, 32)
    widths = [PROBE_BASE + d for d in PROBE_OFFSETS]
    ms = [timer.time_point(shape, "out", w).ms for w in widths]
    return {"shape": shape.key(), "widths": widths, "ms": [round(v, 5) for v in ms], **detect_step(widths, ms)}


def detect_step(widths: list[int], ms: list[float], rel_tol: float = 0.04) -> dict[str, Any]:
    """The channel multiple the runtime favours, from timings at base, base+1, base+2, base+4, ...

    With a step of s, one channel past a multiple of s costs as much as s channels: t(base+1) ~ t(base+s), and
    t(base+1) is clearly above t(base). The largest such s is chosen; 1 when there is no jump at base+1.
    """
    t = dict(zip(widths, ms, strict=True))
    base = widths[0]
    tol = rel_tol * t[base]
    jump = t[base + 1] - t[base]
    if jump <= tol:
        return {"step": 1, "why": f"no jump one channel past {base} ({jump:+.4f} ms, noise {tol:.4f} ms)"}
    for s in STEPS:
        if base + s in t and abs(t[base + s] - t[base + 1]) <= tol:
            return {"step": s, "why": f"{base + 1}..{base + s} channels cost the same (within {tol:.4f} ms), "
                                      f"{jump:+.4f} ms above {base}"}
    return {"step": 1, "why": f"latency grows at every width past {base}"}
