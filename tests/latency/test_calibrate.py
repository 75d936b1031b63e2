"""The measure-and-adjust loop on a synthetic lane: the table's promise is wrong, the loop must still land.

One channel group of 256; the "table" promises a fixed saving per removed channel, while the "device" costs
the square of the width (a layer whose input and output both shrink) plus a fixed overhead, widths in steps of
16. The chosen allocation must meet the target and be the least pruned allocation on the grid that does, and
the bracketed (secant) step must not overshoot the way one proportional step does.
"""

from __future__ import annotations

import math

import pytest

from edgeprune.latency.calibrate import Point, choose, measure_and_adjust, next_scale

C, DENSE, STEP = 256, 100.0, 16


def _lane(promise: float, target: float):
    def allocate_at(scale: float) -> tuple[dict[str, int], float]:
        width = C - math.ceil((DENSE - target) / (promise * scale))
        width = max(STEP, (width // STEP) * STEP)
        return {"g": width}, DENSE - scale * promise * (C - width)

    def measure(keep: dict[str, int]) -> tuple[float, None]:
        return DENSE * (keep["g"] / C) ** 2 + 2.0, None

    return allocate_at, measure


def _run(promise: float, target: float, rounds: int = 3) -> tuple[Point, list[Point]]:
    allocate_at, measure = _lane(promise, target)
    keep, predicted = allocate_at(1.0)
    first = Point(1.0, keep, predicted, measure(keep)[0])
    return measure_and_adjust(first, allocate_at, measure, DENSE, target, tolerance=0.02, rounds=rounds)


def _grid_best(target: float) -> int:
    """The widest width on the step grid whose cost meets the target (what a perfect table would choose)."""
    limit = target * 1.02
    return max(w for w in range(STEP, C + 1, STEP) if DENSE * (w / C) ** 2 + 2.0 <= limit)


@pytest.mark.parametrize("promise,target", [(2.0, 40.0), (0.4, 40.0), (1.0, 25.0), (3.0, 60.0)])
def test_the_loop_lands_on_the_least_pruned_allocation_that_meets_the_target(promise: float, target: float) -> None:
    chosen, points = _run(promise, target)
    assert chosen.measured_ms <= target * 1.02, [p.as_dict() for p in points]
    assert chosen.keep["g"] == _grid_best(target), [(p.keep, p.measured_ms) for p in points]
    assert len(points) <= 4


def test_a_table_that_overpromises_first_misses_then_is_corrected() -> None:
    """Like ResNet-18 at 224 px on this host: the first allocation saves a fraction of the promise (too slow)."""
    chosen, points = _run(promise=2.0, target=40.0)
    assert points[0].measured_ms > 40.0 * 1.02  # the table's first allocation misses
    assert points[1].scale < 1.0  # the savings were scaled down ...
    assert chosen is not points[0] and chosen.measured_ms <= 40.8  # ... and the target is met


def test_the_secant_step_closes_in_instead_of_overshooting() -> None:
    slow = Point(1.0, {"g": 224}, 40.0, 80.0)
    fast = Point(0.2, {"g": 64}, 70.0, 10.0)
    scale = next_scale([slow, fast], DENSE, 40.0, 40.8)
    assert 0.2 < scale < 1.0 and scale == pytest.approx(1.0 + (40.0 - 80.0) * (0.2 - 1.0) / (10.0 - 80.0))
    assert choose([slow, fast], 40.8) is fast
    closer = Point(0.5, {"g": 160}, 50.0, 39.0)
    assert choose([slow, fast, closer], 40.8) is closer  # least pruned among those meeting the target
    assert choose([slow], 40.8) is slow  # none meets it: the fastest measured
