"""Turn per-layer densities into one channel keep-ratio per dependency group, then meet a budget.

methods.md §2.2 step 2 (a recommendation, not the PreCropping paper's unpublished rule): give every group g
a keep ratio c_g. Cropping realises density c_in(l)·c_out(l) in a dense conv/linear layer l and c_g in a
depthwise conv; dimensions outside every prunable group (network input, stem, classifier output) stay at 1.
Fit  min Σ_l w_l (log c_in(l) + log c_out(l) − log d_l)²  with w_l the layer's parameter (or MAC) count,
subject to floor_g/C_g ≤ c_g ≤ 1 — a box-constrained convex quadratic with one variable per group, solved
exactly by coordinate descent. All layers coupled by a residual stream share their group's single width.
Then shift every log c_g by one global offset t (bisection) until the cost model meets the budget, and
close the last rounding gap by single-channel steps on the groups furthest from their fitted width.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from edgeprune.prune.graph import ChannelGroup, round_keep

_MIN_DENSITY = 1e-4


@dataclass
class LayerLink:
    """Which groups set a conv/linear layer's input and output widths (None: fixed at full width)."""

    name: str
    weight: float
    in_root: str | None
    out_root: str | None
    depthwise: bool

    def coefficients(self) -> dict[str, int]:
        """How many times each group's log-ratio enters this layer's log-density."""
        coef: dict[str, int] = {}
        if self.out_root is not None:
            coef[self.out_root] = 1
        if self.in_root is not None and not self.depthwise:
            coef[self.in_root] = coef.get(self.in_root, 0) + 1
        return coef


@dataclass
class WidthSolution:
    keep: dict[str, int]
    fitted: dict[str, float]  # c_g from the least-squares fit, before the budget shift
    ratios: dict[str, float]  # c_g after the budget shift (before rounding to whole channels)
    shift: float  # the global log-offset t
    estimate: float  # cost-model value of ``keep``
    links: list[LayerLink] = field(default_factory=list)


def _output_positions(model: nn.Module, example_input: torch.Tensor) -> dict[nn.Module, int]:
    positions: dict[nn.Module, int] = {}

    def record(mod: nn.Module, _inp: object, out: torch.Tensor) -> None:
        positions[mod] = int(out[0].numel() // out.shape[1]) if out.dim() > 2 else 1

    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(example_input)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return positions


def link_layers(model: nn.Module, groups: list[ChannelGroup], example_input: torch.Tensor,
                weight_by: str = "params") -> list[LayerLink]:
    """One link per Conv2d/Linear layer; ``weight_by`` is "params" or "macs"."""
    side: dict[tuple[nn.Module, str], str] = {}
    for g in groups:
        for item in g.group:
            mod = item.dep.target.module
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                key = (mod, "out" if "out" in item.dep.handler.__name__ else "in")
                side.setdefault(key, g.root_name)
    positions = _output_positions(model, example_input) if weight_by == "macs" else {}
    links = []
    for name, mod in model.named_modules():
        if not isinstance(mod, (nn.Conv2d, nn.Linear)):
            continue
        depthwise = isinstance(mod, nn.Conv2d) and mod.groups > 1 and mod.groups == mod.in_channels
        weight = float(mod.weight.numel()) * (positions.get(mod, 1) if weight_by == "macs" else 1)
        links.append(LayerLink(name, weight, side.get((mod, "in")), side.get((mod, "out")), depthwise))
    return links


def fit_log_ratios(links: list[LayerLink], densities: dict[str, float], groups: list[ChannelGroup],
                   sweeps: int = 500) -> dict[str, float]:
    """Weighted least squares in log space, one log c_g per group within [log(floor/C), 0]."""
    lower = {g.root_name: math.log(g.floor / g.channels) for g in groups}
    x = {g.root_name: 0.0 for g in groups}
    terms = []  # (weight, coefficients, log target)
    total = sum(link.weight for link in links if link.coefficients()) or 1.0
    for link in links:
        coef = {r: c for r, c in link.coefficients().items() if r in x}
        if coef and link.name in densities:
            terms.append((link.weight / total, coef, math.log(max(densities[link.name], _MIN_DENSITY))))
    by_group: dict[str, list[int]] = {r: [] for r in x}
    for i, (_, coef, _) in enumerate(terms):
        for r in coef:
            by_group[r].append(i)
    for _ in range(sweeps):
        moved = 0.0
        for r, idx in by_group.items():
            if not idx:
                continue
            num = den = 0.0
            for i in idx:
                w, coef, target = terms[i]
                rest = sum(c * x[q] for q, c in coef.items() if q != r)
                num += w * coef[r] * (target - rest)
                den += w * coef[r] ** 2
            new = min(0.0, max(lower[r], num / den))
            moved = max(moved, abs(new - x[r]))
            x[r] = new
        if moved < 1e-10:
            break
    return x


def _valid_keeps(g: ChannelGroup, round_to: int | None) -> list[int]:
    return sorted({round_keep(v, g.channels, g.floor, round_to) for v in range(g.channels + 1)})


def meet_budget(groups: list[ChannelGroup], log_ratios: dict[str, float], cost: Callable[[dict[str, int]], float],
                goal: float, tolerance: float, round_to: int | None) -> tuple[dict[str, int], float, dict[str, float]]:
    """Keep counts whose ``cost`` is within ``tolerance`` (absolute) of ``goal`` if whole channels allow it.

    Returns (keep, shift t, continuous ratios c_g·e^t clipped to [floor/C, 1]).
    """
    valid = {g.root_name: _valid_keeps(g, round_to) for g in groups}

    def ratios_at(t: float) -> dict[str, float]:
        return {g.root_name: min(1.0, max(g.floor / g.channels, math.exp(log_ratios[g.root_name] + t)))
                for g in groups}

    def keep_at(t: float) -> dict[str, int]:
        r = ratios_at(t)
        return {g.root_name: round_keep(int(round(r[g.root_name] * g.channels)), g.channels, g.floor, round_to)
                for g in groups}

    lo = min(math.log(g.floor / g.channels) - log_ratios[g.root_name] for g in groups) - 1.0
    hi = max(-log_ratios[g.root_name] for g in groups) + 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if cost(keep_at(mid)) > goal else (mid, hi)
    t = lo if abs(cost(keep_at(lo)) - goal) <= abs(cost(keep_at(hi)) - goal) else hi
    keep, want = keep_at(t), ratios_at(t)
    # close the rounding gap one step at a time, on the group furthest from its fitted width
    for _ in range(4 * sum(g.channels for g in groups)):
        value = cost(keep)
        if abs(value - goal) <= tolerance:
            break
        shrink = value > goal
        best: tuple[float, str, int] | None = None
        for g in groups:
            opts = valid[g.root_name]
            i = opts.index(keep[g.root_name])
            j = i - 1 if shrink else i + 1
            if not 0 <= j < len(opts):
                continue
            trial = dict(keep, **{g.root_name: opts[j]})
            if abs(cost(trial) - goal) >= abs(value - goal):
                continue
            excess = keep[g.root_name] / g.channels - want[g.root_name]
            rank = excess if shrink else -excess
            if best is None or rank > best[0]:
                best = (rank, g.root_name, opts[j])
        if best is None:
            break
        keep[best[1]] = best[2]
    return keep, t, want


def realised_densities(links: list[LayerLink], keep: dict[str, int], groups: list[ChannelGroup]) -> dict[str, float]:
    """Per-layer weight density c_in·c_out (c for depthwise) that cropping to ``keep`` gives."""
    ratio = {g.root_name: keep.get(g.root_name, g.channels) / g.channels for g in groups}
    out = {}
    for link in links:
        log_d = sum(c * math.log(ratio[r]) for r, c in link.coefficients().items() if r in ratio)
        out[link.name] = math.exp(log_d)
    return out
