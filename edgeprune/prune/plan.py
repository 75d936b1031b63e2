"""A pruning plan: kept channel indices per group root, replayable on a freshly built model."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from pydantic import BaseModel, ConfigDict, Field

from edgeprune.errors import EdgepruneError
from edgeprune.prune.graph import build_graph


class PlanEntry(BaseModel):
    """Keep ``keep`` (indices into the root layer's output channels at that step) of ``channels``."""

    model_config = ConfigDict(extra="forbid")

    root: str
    channels: int
    keep: list[int]
    members: list[str] = Field(default_factory=list, description="coupled layers, for people reading the plan")


class PruningPlan(BaseModel):
    """Ordered pruning steps; each step prunes disjoint groups of the model as it is at that step."""

    model_config = ConfigDict(extra="forbid")

    version: int = 1
    steps: list[list[PlanEntry]] = Field(default_factory=list)

    def is_empty(self) -> bool:
        return not any(self.steps)

    def widths(self) -> dict[str, tuple[int, int]]:
        """root -> (channels at first pruning, channels kept at the end)."""
        out: dict[str, tuple[int, int]] = {}
        for step in self.steps:
            for e in step:
                first = out.get(e.root, (e.channels, e.channels))[0]
                out[e.root] = (first, len(e.keep))
        return out


def _prune_step(model: nn.Module, example_input: torch.Tensor, step: list[PlanEntry]) -> None:
    graph = build_graph(model, example_input)
    modules = dict(model.named_modules())
    for entry in step:
        module = modules.get(entry.root)
        if module is None:
            raise EdgepruneError(
                f"the pruning plan names layer '{entry.root}' which the model does not have",
                "load the plan with the same model factory and options it was made with",
            )
        pruner = graph.get_pruner_of_module(module)
        current = pruner.get_out_channels(module)
        if current != entry.channels:
            raise EdgepruneError(
                f"layer '{entry.root}' has {current} channels but the plan expects {entry.channels}",
                "load the plan with the same model factory and options it was made with",
            )
        drop = sorted(set(range(entry.channels)) - set(entry.keep))
        if drop:
            graph.get_pruning_group(module, pruner.prune_out_channels, drop).prune()


def apply_plan(model: nn.Module, plan: PruningPlan, example_input: torch.Tensor) -> nn.Module:
    """Replay ``plan`` on ``model`` in place (a fresh model from the same factory) and return it."""
    model.eval()
    for step in plan.steps:
        _prune_step(model, example_input, step)
    return model


def save_pruned(path: str, model: nn.Module, plan: PruningPlan, meta: dict[str, Any]) -> None:
    """Plan + state dict in one torch file (tensors and plain data only: loads with weights_only=True)."""
    from edgeprune.fsutil import atomic_path

    payload = {"plan": plan.model_dump(), "state_dict": model.state_dict(), "meta": meta}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_pruned(path: str, fresh_model: nn.Module, example_input: torch.Tensor) -> tuple[nn.Module, PruningPlan, dict]:
    """Rebuild a pruned model: replay the plan on ``fresh_model`` and load the weights (no pickled modules)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise EdgepruneError(f"pruned checkpoint {path} does not exist",
                             "give the pruned.pt of a run directory") from None
    if not isinstance(payload, dict) or "plan" not in payload:
        raise EdgepruneError(f"{path} is not an edgeprune pruned checkpoint", "give the pruned.pt written by edgeprune")
    plan = PruningPlan.model_validate(payload["plan"])
    model = apply_plan(fresh_model, plan, example_input)
    model.load_state_dict(payload["state_dict"], strict=True)
    return model.eval(), plan, payload.get("meta", {})
