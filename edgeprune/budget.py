"""Budgets: the user asks for a FLOPs or parameter reduction, not a channel ratio.

The one home of the budget rule: a prune asks for exactly one of ``flops_reduction`` / ``params_reduction`` /
``latency_reduction`` (a value that is None or 0 asks for nothing), each in [0, 1). A latency budget is met
against a table measured on a device lane (edgeprune.latency), not against the counts here. The config, the
CLI, the bake-off and the prune stage all go through :func:`budget_kind` and :meth:`Budget.from_options`.
This module imports nothing heavy at import time, so the config can use it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from edgeprune.errors import EdgepruneError

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

Kind = Literal["flops", "params", "latency"]
KINDS: tuple[Kind, ...] = ("flops", "params", "latency")


def budget_kind(flops_reduction: object, params_reduction: object, latency_reduction: object = None) -> Kind | None:
    """Which budget is asked for (None: none); asking for two kinds is an error."""
    asked = [k for k, v in zip(KINDS, (flops_reduction, params_reduction, latency_reduction), strict=True) if v]
    if len(asked) > 1:
        raise EdgepruneError(f"give either a {' or a '.join(asked)} reduction, not both",
                             "pick one budget kind: --flops-reduction, --params-reduction or --latency-reduction")
    return asked[0] if asked else None


@dataclass(frozen=True)
class Budget:
    kind: Kind
    reduction: float  # fraction of the dense count to remove
    tolerance: float = 0.02  # allowed |achieved - target|, as a fraction of the dense count

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise EdgepruneError(f"unknown budget kind '{self.kind}'", f"use one of {', '.join(KINDS)}")
        if not 0.0 <= self.reduction < 1.0:
            raise EdgepruneError(f"a {self.kind} reduction must be in (0, 1), got {self.reduction:g}",
                                 f"give e.g. --{self.kind}-reduction 0.5")
        if self.tolerance <= 0:
            raise EdgepruneError(f"a budget tolerance must be positive, got {self.tolerance:g}", "give e.g. 0.02")

    @classmethod
    def from_options(cls, flops_reduction: float | None, params_reduction: float | None,
                     tolerance: float = 0.02, latency_reduction: float | None = None) -> Budget | None:
        """The budget a config or command line asks for; None when it asks for no reduction at all."""
        kind = budget_kind(flops_reduction, params_reduction, latency_reduction)
        if kind is None:
            return None
        reduction = {"flops": flops_reduction, "params": params_reduction, "latency": latency_reduction}[kind]
        return cls(kind, float(reduction or 0.0), tolerance)

    def options(self) -> dict[str, float | None]:
        """The config keys that ask for this budget (the inverse of :meth:`from_options`)."""
        out: dict[str, float | None] = {"flops_reduction": self.reduction if self.kind == "flops" else 0.0,
                                        "params_reduction": self.reduction if self.kind == "params" else None}
        if self.kind == "latency":
            out["latency_reduction"] = self.reduction
        return out

    def at(self, reduction: float) -> Budget:
        """The same kind and tolerance at another reduction (a step of gradual pruning)."""
        return replace(self, reduction=reduction)

    def measure(self, macs: float, params: float) -> float:
        """The one of the two counts this budget is about (a latency budget has no count: it is timed)."""
        if self.kind == "latency":
            raise EdgepruneError("a latency budget is timed on a device, not counted",
                                 "prune with edgeprune.latency.prune_to_latency")
        return macs if self.kind == "flops" else params

    def describe(self) -> str:
        return f"-{self.reduction:.0%} {({'flops': 'MACs', 'params': 'params', 'latency': 'latency'})[self.kind]}"


def count(model: nn.Module, example_input: torch.Tensor) -> tuple[int, int]:
    """(MACs, params) of one forward pass."""
    import torch_pruning as tp

    was_training = model.training
    model.eval()
    macs, params = tp.utils.count_ops_and_params(model, example_input)
    model.train(was_training)
    return int(macs), int(params)
