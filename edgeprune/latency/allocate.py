"""Latency-aware allocation (HALP-like greedy): remove channels where they save the most predicted latency per
unit of criterion importance, in steps of the channel multiple the runtime favours, until the prediction meets
the target.

The model's Conv2d/Linear layers are mapped to :class:`LayerShape` rows; a keep-allocation over the prunable
groups gives each layer's (cin, cout); the prediction is the measured dense latency minus the table's savings.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from edgeprune.latency.table import Axis, LatencyTable, LayerShape
from edgeprune.prune.graph import ChannelGroup


@dataclass
class LayerUse:
    """One layer of the model: its full shape and which sides belong to prunable groups."""

    name: str
    module: nn.Module
    shape: LayerShape
    axes: set[Axis]


def model_layers(model: nn.Module, example_input: torch.Tensor, groups: list[ChannelGroup]) -> list[LayerUse]:
    """Every Conv2d/Linear of ``model`` whose width a group can change, with its shape (one traced forward)."""
    sides: dict[nn.Module, set[Axis]] = {}
    for g in groups:
        for mod, side, _ in _members(g):
            sides.setdefault(mod, set()).add(side)
    inputs: dict[nn.Module, tuple[int, ...]] = {}
    hooks = [m.register_forward_hook(lambda mod, inp, _out: inputs.__setitem__(mod, tuple(inp[0].shape)))
             for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)) and m in sides]
    with torch.no_grad():
        model.eval()(example_input)
    for h in hooks:
        h.remove()
    out = []
    for name, m in model.named_modules():
        if m not in inputs:
            continue
        shape_in = inputs[m]
        if isinstance(m, nn.Linear):
            shape = LayerShape("linear", m.in_features, m.out_features)
        else:
            dw = m.groups > 1 and m.groups == m.in_channels
            if m.groups > 1 and not dw:
                continue  # grouped (not depthwise) convs are not in the table
            shape = LayerShape("dwconv" if dw else "conv", m.in_channels, m.out_channels, m.kernel_size[0],
                               m.stride[0], _pad(m), shape_in[-2], shape_in[-1])
        axes: set[Axis] = {"out"} if shape.op == "dwconv" else set(sides[m])
        out.append(LayerUse(name, m, shape, axes))
    return out


def _pad(m: nn.Conv2d) -> int:
    return m.padding[0] if isinstance(m.padding, tuple) else (m.kernel_size[0] // 2 if m.padding == "same" else 0)


def _members(g: ChannelGroup) -> list[tuple[nn.Module, Axis, int]]:
    """(module, side, channels of the group on that side) of one group, each (module, side) once."""
    seen: set[tuple[nn.Module, str]] = set()
    out: list[tuple[nn.Module, Axis, int]] = []
    for item in g.group:
        mod = item.dep.target.module
        if not isinstance(mod, (nn.Conv2d, nn.Linear)):
            continue
        side: Axis = "out" if "out" in item.dep.handler.__name__ else "in"
        if (mod, side) not in seen:
            seen.add((mod, side))
            out.append((mod, side, len(item.idxs)))
    return out


class Predictor:
    """Predicted latency of a keep-allocation: the measured dense ms minus the table's per-layer savings."""

    def __init__(self, table: LatencyTable, layers: list[LayerUse], groups: list[ChannelGroup],
                 dense_ms: float) -> None:
        self.table, self.layers, self.groups, self.dense_ms = table, layers, groups, dense_ms
        self.saving_scale = 1.0  # measured / predicted saving of the whole model, learned by re-measuring
        self.members = {g.root_name: _members(g) for g in groups}
        self.full = {id(u.module): table.predict(u.shape, u.shape.cin, u.shape.cout) for u in layers}

    def widths(self, keep: dict[str, int]) -> dict[int, tuple[int, int]]:
        """id(module) -> (cin, cout) under ``keep``."""
        removed: dict[tuple[int, str], int] = {}
        for g in self.groups:
            drop = g.channels - keep.get(g.root_name, g.channels)
            for mod, side, n in self.members[g.root_name] if drop > 0 else []:
                key = (id(mod), side)
                removed[key] = removed.get(key, 0) + round(n * drop / g.channels)
        return {id(u.module): (u.shape.cin - removed.get((id(u.module), "in"), 0),
                               u.shape.cout - removed.get((id(u.module), "out"), 0)) for u in self.layers}

    def layer_ms(self, keep: dict[str, int]) -> dict[str, float]:
        w = self.widths(keep)
        return {u.name: self.table.predict(u.shape, *w[id(u.module)]) for u in self.layers}

    def __call__(self, keep: dict[str, int]) -> float:
        w = self.widths(keep)
        saved = sum(self.full[id(u.module)] - self.table.predict(u.shape, *w[id(u.module)]) for u in self.layers)
        return self.dense_ms - self.saving_scale * saved


def step_floor(g: ChannelGroup, step: int) -> int:
    """The narrowest width the allocation may give ``g``: its floor rounded up to the step."""
    if g.channels <= step:
        return g.channels
    return min(g.channels, max(step, -(-g.floor // step) * step))


def next_width(width: int, step: int) -> int:
    """One step narrower: down to the multiple below, or one whole step when already on a multiple."""
    return width - (width % step or step)


def allocate(groups: list[ChannelGroup], scores: dict[str, torch.Tensor], predict: Predictor, target_ms: float,
             step: int) -> dict[str, int]:
    """Greedy: take away the step of channels with the least importance per predicted ms saved, repeatedly.

    Importance is the sum of the group's lowest remaining criterion scores, over the group's mean score (scores of
    different layers are on different scales). Stops as soon as the prediction meets ``target_ms``; when the
    floors stop it first, the narrowest allocation is returned (the caller reports the shortfall).
    """
    keep = {g.root_name: g.channels for g in groups}
    order = {g.root_name: torch.sort(scores[g.root_name].float()).values for g in groups}
    mean = {k: float(v.abs().mean()) or 1.0 for k, v in order.items()}
    value = predict(keep)
    while value > target_ms:
        best: tuple[float, float, str] | None = None
        best_value = value
        for g in groups:
            k = keep[g.root_name]
            new = next_width(k, step)
            if new < step_floor(g, step):
                continue
            trial = {**keep, g.root_name: new}
            trial_value = predict(trial)
            gone = order[g.root_name][g.channels - k:g.channels - new]
            importance = float(gone.abs().sum()) / mean[g.root_name]
            saved = value - trial_value
            rank = (importance / saved if saved > 1e-9 else float("inf"), importance, g.root_name)
            if best is None or rank < best:
                best, best_value = rank, trial_value
        if best is None:
            break
        keep[best[2]] = next_width(keep[best[2]], step)
        value = best_value
    return give_back(groups, order, mean, keep, predict, target_ms, step)


def give_back(groups: list[ChannelGroup], order: dict[str, torch.Tensor], mean: dict[str, float],
              keep: dict[str, int], predict: Predictor, target_ms: float, step: int) -> dict[str, int]:
    """Steps are coarse, so the greedy pass may overshoot: return a step of the most important channels to
    any group while the prediction still meets the target (most importance regained per ms first)."""
    keep = dict(keep)
    value = predict(keep)
    while True:
        best: tuple[float, str, int, float] | None = None
        for g in groups:
            k = keep[g.root_name]
            if k >= g.channels:
                continue
            new = min(g.channels, k + step)  # below full width, k is a multiple of the step
            trial_value = predict({**keep, g.root_name: new})
            if trial_value > target_ms:
                continue
            regained = float(order[g.root_name][g.channels - new:g.channels - k].abs().sum()) / mean[g.root_name]
            rank = -regained / max(trial_value - value, 1e-9)
            if best is None or (rank, g.root_name) < (best[0], best[1]):
                best = (rank, g.root_name, new, trial_value)
        if best is None:
            return keep
        keep[best[1]], value = best[2], best[3]
