"""Random channel scores: the floor any real criterion must beat (seeded, deterministic)."""

from __future__ import annotations

import zlib

import torch
import torch.nn as nn
import torch_pruning as tp
from pydantic import BaseModel, ConfigDict

from edgeprune.prune.criteria.registry import CRITERIA
from edgeprune.prune.criterion import Scorer
from edgeprune.prune.graph import ChannelGroup
from edgeprune.prune.types import PruneContext


class RandomOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int | None = None  # default: the run's seed (PruneContext.seed)


@CRITERIA.register("random")
class RandomCriterion(Scorer):
    name = "random"
    summary = "uniform random scores, seeded by the run's seed (baseline)"
    Options = RandomOptions
    options: RandomOptions

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        self._seed = self.options.seed or 0
        self._names: dict[int, str] = {}

    def prepare(self, model: nn.Module, groups: list[ChannelGroup], ctx: PruneContext) -> None:
        self._seed = self.options.seed if self.options.seed is not None else ctx.seed
        self._names = {id(g.root): g.root_name for g in groups}

    def __call__(self, group: tp.Group) -> torch.Tensor | None:
        n = len(group[0].idxs)
        # one stream per group, keyed by the root's name: scores do not depend on the order groups are scored in
        key = self._names.get(id(group[0].dep.target.module), f"#{n}")
        gen = torch.Generator().manual_seed((self._seed * 1_000_003 + zlib.crc32(key.encode())) % 2**63)
        return torch.rand(n, generator=gen)
