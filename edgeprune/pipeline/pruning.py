"""The prune stage's logic: pick the criterion, build its context, one-shot or gradual (cubic) pruning.

Gradual pruning recovers between its steps with the fine-tuning recipe of ``pipeline.recovery`` (class-weighted
distillation from the dense model, the validation checkpoint rule)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
import torch.nn as nn

from edgeprune.budget import Budget, count
from edgeprune.pipeline.context import BuildContext
from edgeprune.pipeline.recovery import train_settings
from edgeprune.prune.criteria import create_criterion
from edgeprune.prune.engine import prune_gradually, prune_model
from edgeprune.prune.plan import PruningPlan
from edgeprune.prune.types import PruneContext, PruneResult, PruneSettings
from edgeprune.train import train_model


def budget_from_config(ctx: BuildContext) -> Budget | None:
    p = ctx.cfg.prune
    return Budget.from_options(p.flops_reduction, p.params_reduction, p.tolerance, p.latency_reduction)


def settings_from_config(ctx: BuildContext) -> PruneSettings:
    p = ctx.cfg.prune
    return PruneSettings(min_channels=p.min_channels, min_keep_ratio=p.min_keep_ratio, round_to=p.round_to,
                         protect_stem=p.protect_stem, protect_classifier=p.protect_classifier)


def prune_context(ctx: BuildContext) -> PruneContext:
    data = ctx.data
    x, y = data.calib_inputs, data.train.y[data.calib_ids]
    batches = [(x[i : i + 32], y[i : i + 32]) for i in range(0, len(x), 32)]
    finetune = train_settings(ctx, ctx.cfg.finetune)

    def train_fn(model: nn.Module, epochs: int, after_backward: list[Any] | None = None,
                 lr: float | None = None, teacher: nn.Module | None = None) -> Any:
        """Fine-tuning settings for ``epochs`` epochs, all of them run (patience = epochs)."""
        s = replace(finetune, epochs=epochs, lr=lr or finetune.lr, patience=max(epochs, 1))
        return train_model(model, data.train, data.val, data.num_classes, s, teacher=teacher,
                           after_backward=after_backward)

    return PruneContext(example_input=ctx.example_input, calib_batches=batches, train_fn=train_fn,
                        model_factory=ctx.fresh_model, seed=ctx.cfg.seed,
                        log=lambda msg: ctx.console.print(f"  [dim]{msg}[/dim]"))


def run_pruning(ctx: BuildContext, dense: nn.Module) -> PruneResult:
    """Prune ``dense`` as configured; with ``iterative_steps`` > 1, fine-tune between the steps."""
    cfg = ctx.cfg.prune
    budget = budget_from_config(ctx)
    torch.manual_seed(ctx.cfg.seed)
    dense_counts = count(dense, ctx.example_input)
    if budget is None:
        macs, params = dense_counts
        return PruneResult(model=dense, plan=PruningPlan(), criterion="none", budget=Budget("flops", 0.0),
                           dense_macs=macs, dense_params=params, macs=macs, params=params, level=0.0, seconds=0.0)
    pctx = prune_context(ctx)
    settings = settings_from_config(ctx)
    if budget.kind == "latency":
        return _prune_to_latency(ctx, dense, budget, pctx, settings)
    if cfg.iterative_steps <= 1:
        return prune_model(dense, create_criterion(cfg.criterion, **cfg.options), budget, pctx, settings, dense_counts)
    # between the steps: the configured (or scaled) fine-tuning length split over the steps, same recovery recipe
    epochs = train_settings(ctx, ctx.cfg.finetune).epochs
    return prune_gradually(dense, lambda: create_criterion(cfg.criterion, **cfg.options), budget, pctx, settings,
                           cfg.iterative_steps, max(1, epochs // cfg.iterative_steps))


def _prune_to_latency(ctx: BuildContext, dense: nn.Module, budget: Budget, pctx: PruneContext,
                      settings: PruneSettings) -> PruneResult:
    """Single-shot pruning against the latency table of the configured lane (edgeprune.latency)."""
    from edgeprune.errors import EdgepruneError
    from edgeprune.latency.pruner import prune_to_latency
    from edgeprune.latency.source import latency_source
    from edgeprune.prune.criterion import Scorer

    cfg = ctx.cfg.prune
    scorer = create_criterion(cfg.criterion, **cfg.options)
    if not isinstance(scorer, Scorer):
        raise EdgepruneError(f"--latency-reduction needs a scoring criterion; '{cfg.criterion}' is a whole procedure",
                             "use e.g. --criterion l1 or beta-rank with --latency-reduction")
    return prune_to_latency(dense, scorer, budget, pctx, settings, device=latency_source(ctx.cfg))
