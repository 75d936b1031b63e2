"""Global magnitude pruning with a minimum threshold, structured (Gupta et al. 2022, methods.md §4).

Global MP ranks every weight of the network by |w| against one threshold. The structured analogue here
scores a channel by the mean |w| of all the conv/linear weights that disappear with it (its output filters,
the matching input slices of its consumers, depthwise filters), so a score is a per-parameter magnitude and
one threshold over all groups is meaningful (``scope = "global"``). The engine cuts at one global quantile.
As with unstructured Global MP, layers with a large fan-in (smaller weights at init and after training) lose
relatively more channels; that is the method, and the per-layer minimum below is its safeguard.

Layer collapse is the failure mode of a global threshold. The Minimum Threshold of the paper keeps at least
MT_abs = 0.05 % of all weights per layer; here ``min_keep_abs`` is the same fraction of all prunable channels,
and a group keeps max(engine floor, ceil(min_keep_abs * total channels)). torch-pruning's own guard,
``max_pruning_ratio``, does not do this: it is only checked between steps, so one global step can cut a
16-channel group to 1 channel (methods.md §4). :meth:`GlobalMagnitudeCriterion.floor` gives the raised floor
and :meth:`prepare` applies it to the groups the engine will allocate.

``channel_rows`` (the walk over a group's per-channel parameter slices) is shared with ``taylor`` and ``fpgm``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
import torch_pruning as tp
from pydantic import BaseModel, ConfigDict, Field
from torch_pruning.pruner.function import ConvPruner, DepthwiseConvPruner, LinearPruner

from edgeprune.prune.criteria import CRITERIA
from edgeprune.prune.criterion import Scorer, scatter_to_root
from edgeprune.prune.types import PruneContext
from edgeprune.prune.graph import ChannelGroup

ValueOf = Callable[[torch.Tensor], torch.Tensor]


def _detached(p: torch.Tensor) -> torch.Tensor:
    return p.detach()


def item_kind(item: Any) -> str | None:
    """'out' (the layer's own output channels: conv, depthwise conv, linear), 'in' (a consumer's input
    channels), 'norm' (a BatchNorm's channels) or None for everything else (adds, reshapes, ...)."""
    mod = item.dep.target.module
    pruner = getattr(item.dep.handler, "__self__", None)
    side = "out" if item.dep.handler.__name__ == "prune_out_channels" else "in"
    if isinstance(mod, nn.modules.conv._ConvNd) and isinstance(pruner, DepthwiseConvPruner):
        return "out"  # a depthwise filter goes with its channel whichever side the group reaches it from
    if isinstance(mod, nn.modules.conv._ConvNd) and isinstance(pruner, ConvPruner):
        return side
    if isinstance(mod, nn.Linear) and isinstance(pruner, LinearPruner):
        return side
    if isinstance(mod, nn.modules.batchnorm._BatchNorm) and side == "out":
        return "norm" if mod.affine else None
    return None


def _in_rows(mod: nn.Module, w: torch.Tensor, idxs: torch.Tensor) -> torch.Tensor:
    """Rows (one per input channel in ``idxs``) of the weights that read that channel."""
    if not isinstance(mod, nn.modules.conv._ConvNd):  # linear
        return w[:, idxs].t()
    if mod.transposed:  # (C_in, C_out/groups, k...) -- rows are already per input channel
        return w[idxs].flatten(1)
    groups = mod.groups
    per_group_in = w.shape[1]
    per_group_out = w.shape[0] // groups
    grouped = w.reshape(groups, per_group_out, per_group_in, *w.shape[2:])
    return grouped[idxs // per_group_in, :, idxs % per_group_in].flatten(1)


def channel_rows(group: tp.Group, value_of: ValueOf = _detached, norms: bool = False, bias: bool = False
                 ) -> list[tuple[torch.Tensor, list[int], str, nn.Module]]:
    """Per-channel slices of ``value_of(parameter)`` for every parameterised member of ``group``.

    Returns (rows [len(idxs), elements], root_idxs, kind, module) per member; kind is 'out', 'in' or 'norm'.
    ``norms`` adds BatchNorm γ (and β with ``bias``); ``bias`` adds conv/linear biases to the 'out' rows.
    Each (module, kind) appears once; members whose root indices are unknown are skipped.
    """
    out: list[tuple[torch.Tensor, list[int], str, nn.Module]] = []
    seen: set[tuple[int, str]] = set()
    for item in group:
        kind = item_kind(item)
        mod = item.dep.target.module
        if kind is None or (kind == "norm" and not norms) or (id(mod), kind) in seen:
            continue
        if any(r is None for r in item.root_idxs):
            continue
        seen.add((id(mod), kind))
        idxs = torch.as_tensor(list(item.idxs), dtype=torch.long)
        if kind == "norm":
            rows = value_of(mod.weight)[idxs].unsqueeze(1)
            if bias and mod.bias is not None:
                rows = torch.cat([rows, value_of(mod.bias)[idxs].unsqueeze(1)], 1)
        elif kind == "out":
            w = value_of(mod.weight)
            if getattr(mod, "transposed", False):
                w = w.transpose(0, 1)
            rows = w[idxs].flatten(1)
            if bias and getattr(mod, "bias", None) is not None:
                rows = torch.cat([rows, value_of(mod.bias)[idxs].unsqueeze(1)], 1)
        else:
            rows = _in_rows(mod, value_of(mod.weight), idxs)
        out.append((rows, list(item.root_idxs), kind, mod))
    return out


class GlobalMagnitudeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_keep_abs: float = Field(0.0005, ge=0.0, lt=1.0,
                                description="every group keeps at least this fraction of all prunable channels")


@CRITERIA.register("global-magnitude")
class GlobalMagnitudeCriterion(Scorer):
    name = "global-magnitude"
    summary = "mean |w| of the weights removed with each channel, one global threshold, per-layer minimum"
    paper = "https://arxiv.org/abs/2209.14624"
    scope = "global"
    Options = GlobalMagnitudeOptions
    options: GlobalMagnitudeOptions

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        self.min_abs = 0

    def floor(self, group: ChannelGroup) -> int:
        """The group's minimum width: the engine's floor raised to the MT_abs-like absolute minimum."""
        return min(group.channels, max(group.floor, self.min_abs))

    def prepare(self, model: nn.Module, groups: list[ChannelGroup], ctx: PruneContext) -> None:
        total = sum(g.channels for g in groups)
        self.min_abs = math.ceil(self.options.min_keep_abs * total)
        raised = 0
        for g in groups:
            new = self.floor(g)
            raised += new > g.floor
            g.floor = new
        if raised:
            ctx.log(f"global-magnitude: {raised} group(s) keep at least {self.min_abs} channels (min_keep_abs)")

    @torch.no_grad()
    def __call__(self, group: tp.Group) -> torch.Tensor | None:
        rows = channel_rows(group, lambda p: p.detach().abs())
        if not rows:
            return None
        n = len(group[0].idxs)
        total = scatter_to_root(group, [(r.double().sum(1), ri) for r, ri, _, _ in rows], n)
        counts = scatter_to_root(group, [(torch.full((len(ri),), float(r.shape[1])), ri) for r, ri, _, _ in rows], n)
        return total / counts.clamp_min(1.0)
