"""Model files of a run: dense weights, pruned plan + weights, and a portable torch.export program."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from edgeprune.errors import EdgepruneError
from edgeprune.fsutil import write_bytes_atomic
from edgeprune.prune.plan import PruningPlan, apply_plan


def save_checkpoint(path: Path, model: nn.Module, plan: PruningPlan | None = None,
                    meta: dict[str, Any] | None = None) -> None:
    """State dict (+ pruning plan) only: loads with ``weights_only=True``, no pickled modules."""
    payload = {"state_dict": model.state_dict(), "plan": (plan or PruningPlan()).model_dump(), "meta": meta or {}}
    buffer = io.BytesIO()  # torch.save records the file name inside the archive: save in memory for stable bytes
    torch.save(payload, buffer)
    write_bytes_atomic(path, buffer.getvalue())


def load_checkpoint(path: Path, fresh: nn.Module, example_input: torch.Tensor) -> tuple[nn.Module, PruningPlan]:
    """Rebuild: replay the plan on a fresh model from the factory, then load the weights."""
    if not path.is_file():
        raise EdgepruneError(f"checkpoint {path} does not exist",
                             "run the stage that writes it first (edgeprune build)")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    plan = PruningPlan.model_validate(payload.get("plan", {}))
    model = apply_plan(fresh, plan, example_input)
    model.load_state_dict(payload["state_dict"], strict=True)
    return model.eval(), plan


def save_exported_program(path: Path, model: nn.Module, example_input: torch.Tensor) -> None:
    """A ``torch.export`` program (.pt2): portable, pickle-free, runs without the model's code."""
    program = torch.export.export(model.eval(), (example_input,))
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    write_bytes_atomic(path, buffer.getvalue())
