"""First-order Taylor importance (Molchanov et al., CVPR 2019), accumulated over the calibration batches.

For every parameter element the estimated loss change of removing it is |w · ∂L/∂w|. ``prepare`` runs
forward and backward on each calibration batch (model in eval mode, so BatchNorm running statistics are
not touched) and averages |w ⊙ g| per batch; averaging absolute values per batch keeps gradients of
different batches from cancelling. A channel's score is the sum over every parameter removed with it:
producer filters (and biases), consumer input slices, depthwise filters, and BatchNorm γ and β.
torch-pruning 1.6.1's GroupTaylorImportance skips BatchNorm (its norm branch handles GroupNorm only) and
depthwise convs; this criterion includes both.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch_pruning as tp
from pydantic import BaseModel, ConfigDict, Field

from edgeprune.prune.channels import channel_rows
from edgeprune.prune.criteria.registry import CRITERIA
from edgeprune.prune.criterion import Scorer, scatter_to_root
from edgeprune.prune.graph import ChannelGroup
from edgeprune.prune.types import PruneContext


class TaylorOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_batches: int | None = Field(None, ge=1, description="use at most this many calibration batches")
    bias: bool = Field(True, description="include bias and BatchNorm beta terms")


@CRITERIA.register("taylor")
class TaylorCriterion(Scorer):
    name = "taylor"
    summary = "first-order Taylor |w * dL/dw| per channel over the calibration batches (BN included)"
    paper = "https://arxiv.org/abs/1906.10771"
    needs_data = True
    needs_grad = True
    Options = TaylorOptions
    options: TaylorOptions

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        self._acc: dict[int, torch.Tensor] | None = None

    def prepare(self, model: nn.Module, groups: list[ChannelGroup], ctx: PruneContext) -> None:
        batches = ctx.calibration(self.name, self.options.max_batches)
        params = list(model.parameters())
        device = params[0].device if params else ctx.device
        flags = [p.requires_grad for p in params]
        was_training = model.training
        acc = {id(p): torch.zeros_like(p, dtype=torch.float64) for p in params}
        try:
            model.eval()
            for p in params:
                p.requires_grad_(True)
            with torch.enable_grad():
                for x, y in batches:
                    model.zero_grad(set_to_none=True)
                    loss = ctx.loss_fn(model(x.to(device)), torch.as_tensor(y).to(device))
                    torch.autograd.backward(loss)
                    for p in params:
                        if p.grad is not None:
                            acc[id(p)] += (p.detach().double() * p.grad.double()).abs()
        finally:
            model.zero_grad(set_to_none=True)
            for p, flag in zip(params, flags, strict=True):
                p.requires_grad_(flag)
            model.train(was_training)
        self._acc = {k: v / len(batches) for k, v in acc.items()}

    @torch.no_grad()
    def __call__(self, group: tp.Group) -> torch.Tensor | None:
        if self._acc is None:
            raise RuntimeError("taylor: prepare() must run before scoring")
        acc = self._acc
        rows = channel_rows(group, lambda p: acc[id(p)], norms=True, bias=self.options.bias)
        if not rows:
            return None
        return scatter_to_root(group, [(r.sum(1), ri) for r, ri, _, _ in rows], len(group[0].idxs))
