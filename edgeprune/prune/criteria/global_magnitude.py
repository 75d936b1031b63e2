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

Channels are walked with ``edgeprune.prune.channels.channel_rows``, as in ``taylor`` and ``fpgm``.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch_pruning as tp
from pydantic import BaseModel, ConfigDict, Field

from edgeprune.prune.channels import channel_rows
from edgeprune.prune.criteria.registry import CRITERIA
from edgeprune.prune.criterion import Scorer, scatter_to_root
from edgeprune.prune.graph import ChannelGroup
from edgeprune.prune.types import PruneContext


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
