"""The empirical latency table (NetAdapt-style): measured milliseconds of single layers at a few widths.

A layer is described by its :class:`LayerShape` (the op, its full channel counts, kernel, stride and input size).
The table holds flat :class:`Point` records, one per (shape, axis, width) timing: ``axis`` "out" varies the
output channels at full input width, "in" varies the input channels at full output width. A layer's latency at
(cin, cout) is predicted as ``full * r_out(cout) * r_in(cin)``, each ratio interpolated linearly between the
measured widths. Flat records are what a phone can post (docs/latency-model.md).
"""

from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

TABLE_SCHEMA = "edgeprune-latency-table/1"
Axis = Literal["out", "in"]


@dataclass(frozen=True)
class LayerShape:
    """One layer at full width: ``op`` conv | dwconv | linear; ``h``/``w``: input spatial size (1 for linear)."""

    op: str
    cin: int
    cout: int
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    h: int = 1
    w: int = 1

    def key(self) -> str:
        return f"{self.op}:{self.cin}x{self.cout}:k{self.kernel}s{self.stride}p{self.padding}:{self.h}x{self.w}"

    def full(self, axis: Axis) -> int:
        return self.cout if axis == "out" or self.op == "dwconv" else self.cin

    @classmethod
    def from_key(cls, key: str) -> LayerShape:
        op, io, ksp, hw = key.split(":")
        cin, cout = (int(v) for v in io.split("x"))
        k, rest = ksp[1:].split("s")
        s, p = rest.split("p")
        h, w = (int(v) for v in hw.split("x"))
        return cls(op, cin, cout, int(k), int(s), int(p), h, w)


@dataclass(frozen=True)
class Point:
    """One timing: ``shape`` (a LayerShape key) with one ``axis`` at ``width`` took ``ms`` (median of ``runs``)."""

    shape: str
    axis: Axis
    width: int
    ms: float
    runs: int = 0
    source: str = "edgeprune"


@dataclass
class LatencyTable:
    """Timings of one device lane (``fingerprint``: kind, model, abi, runtime, threads, precision)."""

    fingerprint: dict[str, Any]
    points: list[Point] = field(default_factory=list)
    probe: dict[str, Any] | None = None  # the channel-step probe (see measure.detect_step)

    def curve(self, shape: LayerShape, axis: Axis) -> dict[int, float]:
        """width -> ms of one axis of one shape (the full width counts for both axes)."""
        key = shape.key()
        out = {p.width: p.ms for p in self.points if p.shape == key and p.axis == axis}
        full = shape.full(axis)
        if full not in out:
            other = {p.width: p.ms for p in self.points if p.shape == key and p.width == shape.full(p.axis)}
            if other:
                out[full] = next(iter(other.values()))
        return out

    def has(self, shape: LayerShape, axis: Axis, width: int) -> bool:
        key = shape.key()
        return any(p.shape == key and p.width == width and (p.axis == axis or width == shape.full(p.axis))
                   for p in self.points)

    def add(self, point: Point) -> None:
        self.points = [p for p in self.points if (p.shape, p.axis, p.width) != (point.shape, point.axis,
                                                                                 point.width)]
        self.points.append(point)

    def full_ms(self, shape: LayerShape) -> float:
        curve = self.curve(shape, "out") or self.curve(shape, "in")
        return curve[max(curve)]

    def ratio(self, shape: LayerShape, axis: Axis, width: int) -> float:
        """Latency at ``width`` over latency at full width, interpolated (1.0 where the axis was not measured)."""
        curve = self.curve(shape, axis)
        if len(curve) < 2:
            return 1.0
        full = curve[max(curve)]
        return interpolate(curve, width) / full if full > 0 else 1.0

    def predict(self, shape: LayerShape, cin: int, cout: int) -> float:
        """Predicted ms of ``shape`` run at (cin, cout) channels."""
        full = self.full_ms(shape)
        if shape.op == "dwconv":
            return full * self.ratio(shape, "out", cout)
        return full * self.ratio(shape, "out", cout) * self.ratio(shape, "in", cin)

    def to_json(self) -> dict[str, Any]:
        return {"schema": TABLE_SCHEMA, "fingerprint": self.fingerprint, "probe": self.probe,
                "points": [asdict(p) for p in sorted(self.points, key=lambda p: (p.shape, p.axis, p.width))]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LatencyTable:
        if data.get("schema") != TABLE_SCHEMA:
            raise ValueError(f"not a latency table: schema {data.get('schema')!r}")
        return cls(dict(data["fingerprint"]), [Point(**p) for p in data.get("points", [])], data.get("probe"))


def interpolate(curve: dict[int, float], width: int) -> float:
    """Piecewise-linear in width through the measured points; below the smallest, towards 0 ms at 0 channels."""
    xs = sorted(curve)
    if width >= xs[-1]:
        return curve[xs[-1]]
    if width <= xs[0]:
        return curve[xs[0]] * max(width, 0) / xs[0]
    i = bisect.bisect_left(xs, width)
    x0, x1 = xs[i - 1], xs[i]
    if width == x1:
        return curve[x1]
    t = (width - x0) / (x1 - x0)
    return curve[x0] + t * (curve[x1] - curve[x0])
