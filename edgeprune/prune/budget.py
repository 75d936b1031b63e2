"""Budgets: the user asks for a FLOPs or parameter reduction, not a channel ratio."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn as nn
import torch_pruning as tp


@dataclass(frozen=True)
class Budget:
    kind: Literal["flops", "params"]
    reduction: float  # fraction of the dense count to remove
    tolerance: float = 0.02  # allowed |achieved - target|, as a fraction of the dense count

    def describe(self) -> str:
        return f"-{self.reduction:.0%} {'MACs' if self.kind == 'flops' else 'params'}"


def count(model: nn.Module, example_input: torch.Tensor) -> tuple[int, int]:
    """(MACs, params) of one forward pass."""
    was_training = model.training
    model.eval()
    macs, params = tp.utils.count_ops_and_params(model, example_input)
    model.train(was_training)
    return int(macs), int(params)
