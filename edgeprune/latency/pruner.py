"""Prune to a latency budget on one device lane: table (cached), step probe, greedy allocation, one verification.

``prune_to_latency`` scores the groups once with the criterion, times the dense model, allocates widths against
the table, realises them and times the pruned model; when the whole model misses the target, the table's savings
are corrected and the widths allocated again (latency/calibrate.py), and the report lists every round.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any

import torch.nn as nn

from edgeprune.budget import Budget, count
from edgeprune.errors import EdgepruneError
from edgeprune.latency.allocate import Predictor, allocate, model_layers, step_floor
from edgeprune.latency.cache import load_table, save_table, table_path
from edgeprune.latency.calibrate import Point, measure_and_adjust
from edgeprune.latency.measure import LaneTimer, fill, probe_step
from edgeprune.latency.table import LatencyTable
from edgeprune.prune.criterion import Scorer
from edgeprune.prune.fit import realise
from edgeprune.prune.types import PruneContext, PruneResult, PruneSettings

__all__ = ["LatencyPruneResult", "LatencyTable", "build_table", "prune_to_latency"]


@dataclass
class LatencyPruneResult(PruneResult):
    """A prune result whose budget is latency: the achieved reduction is the measured one."""

    dense_ms: float = 0.0
    measured_ms: float = 0.0

    @property
    def achieved_reduction(self) -> float:
        return 1.0 - self.measured_ms / self.dense_ms if self.dense_ms > 0 else 0.0


def build_table(model: nn.Module, example_input: Any, groups: list[Any], timer: LaneTimer,
                round_to: int | None = None, log: Any = print) -> tuple[LatencyTable, list[Any], int, int]:
    """The lane's table with every layer of ``model`` in it: the cache, plus whatever it lacks measured now.

    Returns (table, layers, channel step, timings taken); the table is saved back when anything was measured.
    The step is ``round_to`` when given, else the one the lane's probe measured.
    """
    layers = model_layers(model, example_input, groups)
    table = load_table(timer.fingerprint())
    before = timer.count
    if table.probe is None and not round_to:
        log(f"latency: probing the channel step of {timer.spec_text}")
        table.probe = probe_step(timer)
    needs: dict[Any, set[Any]] = {}
    for u in layers:
        needs.setdefault(u.shape, set()).update(u.axes)
    step = round_to or int(table.probe["step"]) if table.probe else round_to or 1
    taken = fill(table, needs, timer, step)
    if timer.count > before:
        save_table(table)
        log(f"latency: {taken} layer timings on {timer.spec_text}, table saved to {table_path(table.fingerprint)}")
    else:
        log(f"latency: every layer found in the cached table {table_path(table.fingerprint)}")
    layers = [u for u in layers if table.curve(u.shape, "out") or table.curve(u.shape, "in")]
    return table, layers, step, timer.count - before


CALIBRATION_ROUNDS = 3  # re-allocations after the first measurement (latency/calibrate.py)


def prune_to_latency(model: nn.Module, scorer: Scorer, budget: Budget, ctx: PruneContext, settings: PruneSettings,
                     device: str = "host", threads: int = 1, runs: int = 15) -> LatencyPruneResult:
    """A pruned copy of ``model`` whose predicted latency on ``device`` is (1 - reduction) of the dense one."""
    from edgeprune.prune.engine import score_groups, single_thread

    start = time.perf_counter()
    timer = LaneTimer.open(device, threads=threads, runs=runs)
    try:
        with single_thread():
            work = copy.deepcopy(model).eval()
            dense = count(work, ctx.example_input)
            groups, scores = score_groups(work, scorer, ctx, settings)
            if not groups:
                raise EdgepruneError("no layer of this model can be pruned", "check protected layers and floors")
            table, layers, step, taken = build_table(work, ctx.example_input, groups, timer, settings.round_to,
                                                     ctx.log)
            probe = table.probe or {"step": 1, "why": "no probe"}
            dense_ms = timer.time_module(copy.deepcopy(work), ctx.example_input, "dense", runs=max(runs, 30))
            predict = Predictor(table, layers, groups, dense_ms)
            target = (1.0 - budget.reduction) * dense_ms
            keep = allocate(groups, scores, predict, target, step)
            predicted = predict(keep)
            if predicted > target * (1 + budget.tolerance):
                floors = {g.root_name: step_floor(g, step) for g in groups}
                most = 1 - predict(floors) / dense_ms
                raise EdgepruneError(
                    f"cannot reach {budget.describe()} on {device}: at most {most:.1%} by the latency table "
                    f"(dense {dense_ms:.3f} ms; the layers' widths cannot go lower with these floors and a "
                    f"{step}-channel step)", "lower --latency-reduction, or lower --min-channels")

            def allocate_at(scale: float) -> tuple[dict[str, int], float]:
                predict.saving_scale = scale
                widths = allocate(groups, scores, predict, target, step)
                return widths, predict(widths)

            def measure(widths: dict[str, int]) -> tuple[float, Any]:
                candidate = realise(work, groups, scores, widths, ctx.example_input)
                ms = timer.time_module(copy.deepcopy(candidate.model), ctx.example_input, "pruned",
                                       runs=max(runs, 30))
                return ms, candidate

            first_ms, first_fit = measure(keep)
            chosen, points = measure_and_adjust(Point(1.0, keep, predicted, first_ms, first_fit), allocate_at,
                                                measure, dense_ms, target, budget.tolerance,
                                                rounds=CALIBRATION_ROUNDS)
            keep, fit, measured, predicted = chosen.keep, chosen.payload, chosen.measured_ms, chosen.predicted_ms
            predict.saving_scale = chosen.scale  # the per-layer report below is the chosen allocation's
            rounds = [p.as_dict() for p in points]
    finally:
        timer.close()
    level = sum(1 - keep[g.root_name] / g.channels for g in groups) / len(groups)
    report = {
        "device": device, "fingerprint": table.fingerprint, "table": str(table_path(table.fingerprint)),
        "threads": threads, "layers": len(layers), "timings_taken": taken,
        "dense_ms": round(dense_ms, 5), "target_ms": round(target, 5), "predicted_ms": round(predicted, 5),
        "measured_ms": round(measured, 5),
        "prediction_error": round((predicted - measured) / measured, 4) if measured > 0 else None,
        "channel_multiple": step, "rounds": rounds,
        "channel_multiple_evidence": {k: v for k, v in probe.items() if k != "step"} if not settings.round_to
        else {"why": f"--round-to {settings.round_to} given"},
        "layer_ms": {k: round(v, 5) for k, v in predict.layer_ms(keep).items()},
    }
    notes = [f"latency-aware ({device}): predicted {predicted:.3f} ms, measured {measured:.3f} ms "
             f"(dense {dense_ms:.3f} ms), widths in multiples of {step}"]
    if not math.isclose(measured, target, rel_tol=max(budget.tolerance, 0.1)) and measured > target:
        notes.append(f"measured latency {measured:.3f} ms is above the target {target:.3f} ms: the table's "
                     "per-layer prediction misses what the whole model does on this lane")
    return LatencyPruneResult(
        model=fit.model.eval(), plan=fit.plan, criterion=scorer.name, budget=budget, dense_macs=dense[0],
        dense_params=dense[1], macs=fit.macs, params=fit.params, level=level,
        seconds=time.perf_counter() - start, notes=notes, extra={"latency": report},
        dense_ms=dense_ms, measured_ms=measured)
