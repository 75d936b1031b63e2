"""Recovery after pruning on the embedded data: the configured recipe, a length override, gradual pruning."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import torch
from rich.console import Console

from edgeprune.config import BuildConfig
from edgeprune.pipeline.context import BuildContext
from edgeprune.pipeline.pruning import prune_context, run_pruning
from edgeprune.pipeline.recovery import recover, recovery_settings


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> Iterator[None]:
    yield


def _ctx(tmp_path, **finetune) -> BuildContext:
    cfg = BuildConfig.model_validate({
        "model": {"name": "test_resblock"}, "data": {"max_train": 120, "calib_size": 16},
        "train": {"batch_size": 32, "augment": False},
        "prune": {"criterion": "l1", "flops_reduction": 0.4, "tolerance": 0.05},
        "finetune": {"images": 240, "min_epochs": 1, "max_epochs": 4, **finetune},
    })
    return BuildContext(cfg, tmp_path, console=Console(quiet=True))


def test_recovery_runs_the_scaled_length_with_the_worst_class_rule(tmp_path) -> None:
    ctx = _ctx(tmp_path)
    torch.manual_seed(0)
    dense = ctx.fresh_model().eval()
    settings = recovery_settings(ctx)
    assert (settings.epochs, settings.kd_weighting, settings.select) == (2, "class", "worst-class")  # 240 / 120
    pruned = run_pruning(ctx, copy.deepcopy(dense)).model
    result = recover(ctx, pruned, "finetune", dense)
    assert result is not None and result.epochs_planned == 2 and 1 <= result.best_epoch <= len(result.history)
    assert "ceil(240 images / 120 training images)" in result.length_rule
    # the reference is the dense model's worst-class sensitivity on validation, measured on the teacher
    assert result.selection["metric"] == "worst-class" and result.selection["reference_worst_class"] is not None
    assert result.selection["reason"]
    summary = result.summary()
    assert summary["epochs_planned"] == 2 and summary["selection"]["reason"] == result.selection["reason"]
    # a search trial asks for its own length
    short = recover(ctx, copy.deepcopy(pruned), "finetune", dense, epochs=1)
    assert short is not None and short.epochs_planned == 1 and len(short.history) == 1
    assert short.length_rule == "1 epochs (requested)"
    assert recover(ctx, copy.deepcopy(pruned), "finetune", dense, epochs=0) is None


def test_gradual_pruning_recovers_between_steps_with_the_recipe(tmp_path) -> None:
    ctx = _ctx(tmp_path)
    ctx.cfg.prune.iterative_steps = 2
    torch.manual_seed(0)
    dense = ctx.fresh_model().eval()
    before = copy.deepcopy(dense.state_dict())
    result = run_pruning(ctx, dense)
    assert abs(result.achieved_reduction - 0.4) <= 0.05 and len(result.plan.steps) == 2
    assert any("gradual pruning in 2 steps" in n for n in result.notes)
    # the dense model (the teacher) is untouched by the training between the steps
    assert all(torch.equal(before[k], v) for k, v in dense.state_dict().items())
    # the training between the steps is the recovery recipe: class-weighted KD and the worst-class rule
    between = prune_context(ctx).train_fn(copy.deepcopy(result.model), 1, teacher=dense)
    assert between.selection["metric"] == "worst-class" and between.selection["reference_worst_class"] is not None
    assert len(between.history) == 1
