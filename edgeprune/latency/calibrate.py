"""Measure-and-adjust: correct the latency table's promise with whole-model timings until one lands on target.

The per-layer table predicts what pruning saves layer by layer; the whole model on the real runtime saves more or
less (memory traffic between layers, kernels the table never sees). NetAdapt's answer is to measure the pruned
model and adjust. Here the adjustment is one number, the scale of the table's savings (``Predictor.saving_scale``):

- while every measured allocation is on the same side of the target, the scale is corrected by the ratio of the
  real to the promised saving of the allocation closest to the target (proportional step);
- once one allocation is too slow and another meets the target, the next scale is interpolated between the two
  (secant step), so the loop closes in on the target instead of overshooting it;
- it stops when an allocation meets the target within ``band`` below it, after ``rounds`` re-allocations, or when
  the corrected table chooses an allocation already measured.

The chosen allocation is the *least* pruned one that meets the target (a deeper cut costs accuracy for speed
nobody asked for); when none meets it, the fastest one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MIN_SCALE, MAX_SCALE = 0.05, 2.0


@dataclass
class Point:
    """One measured allocation: the savings scale it was allocated with, the widths, predicted and measured ms."""

    scale: float
    keep: dict[str, int]
    predicted_ms: float
    measured_ms: float
    payload: Any = None  # what the caller needs to keep of it (e.g. the realised model)

    def as_dict(self) -> dict[str, float]:
        return {"saving_scale": round(self.scale, 4), "predicted_ms": round(self.predicted_ms, 5),
                "measured_ms": round(self.measured_ms, 5)}


def next_scale(points: list[Point], dense_ms: float, target_ms: float, limit_ms: float) -> float | None:
    """The savings scale to allocate with next, or None when the measurements teach nothing."""
    slow = [p for p in points if p.measured_ms > limit_ms]
    fast = [p for p in points if p.measured_ms <= limit_ms]
    if slow and fast:  # bracketed: interpolate between the closest point on each side
        a = min(slow, key=lambda p: p.measured_ms)
        b = max(fast, key=lambda p: p.measured_ms)
        if a.measured_ms == b.measured_ms:
            return None
        scale = a.scale + (target_ms - a.measured_ms) * (b.scale - a.scale) / (b.measured_ms - a.measured_ms)
    else:
        p = min(points, key=lambda q: abs(q.measured_ms - target_ms))
        promised, real = dense_ms - p.predicted_ms, dense_ms - p.measured_ms
        if promised <= 0 or real <= 0:
            return None
        scale = p.scale * real / promised
    return min(MAX_SCALE, max(MIN_SCALE, scale))


def choose(points: list[Point], limit_ms: float) -> Point:
    """The least pruned allocation that meets the limit, else the fastest."""
    meeting = [p for p in points if p.measured_ms <= limit_ms]
    if meeting:
        return max(meeting, key=lambda p: p.measured_ms)
    return min(points, key=lambda p: p.measured_ms)


def measure_and_adjust(first: Point, allocate_at: Callable[[float], tuple[dict[str, int], float]],
                       measure: Callable[[dict[str, int]], tuple[float, Any]], dense_ms: float, target_ms: float,
                       tolerance: float, band: float = 0.1, rounds: int = 3) -> tuple[Point, list[Point]]:
    """Re-allocate with corrected savings scales until an allocation lands in [target - band, target + tolerance].

    ``allocate_at(scale)`` returns the widths and their predicted ms at that scale; ``measure(keep)`` times the
    realised model (and returns whatever the caller wants kept with it). Returns the chosen point and all points.
    """
    limit = target_ms * (1 + tolerance)
    points = [first]
    for _ in range(rounds):
        if any(target_ms * (1 - band) <= p.measured_ms <= limit for p in points):
            break
        scale = next_scale(points, dense_ms, target_ms, limit)
        if scale is None:
            break
        keep, predicted = allocate_at(scale)
        if any(keep == p.keep for p in points):
            break
        measured, payload = measure(keep)
        points.append(Point(scale, keep, predicted, measured, payload))
    return choose(points, limit), points
