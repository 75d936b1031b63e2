"""The prune stage when no budget is given: the chosen trial of the search becomes the run's pruned model."""

from __future__ import annotations

from edgeprune.budget import Budget, count
from edgeprune.pipeline.checkpoints import save_checkpoint
from edgeprune.pipeline.context import BuildContext
from edgeprune.prune.types import PruneResult
from edgeprune.rundir.outcomes import PruneOutcome
from edgeprune.rundir.paths import PRUNED
from edgeprune.search.driver import run_search


def searched_prune(ctx: BuildContext) -> tuple[PruneOutcome, list[str]]:
    """Run (or resume) the search; save the chosen trial's recovered model as ``models/pruned.pt``."""
    found = run_search(ctx)
    dense_macs, dense_params = found.summary["dense_macs"], found.summary["dense_params"]
    macs, params = count(found.model, ctx.example_input)
    chosen = found.chosen
    result = PruneResult(model=found.model, plan=found.plan, criterion=chosen["criterion"],
                         budget=Budget("flops", chosen["level"], ctx.cfg.prune.tolerance), dense_macs=dense_macs,
                         dense_params=dense_params, macs=macs, params=params, level=chosen["level"],
                         seconds=found.summary["seconds"], recovery="searched",
                         notes=[f"chosen by the search: trial {chosen['number']} of {len(found.summary['trials'])}, "
                                f"{chosen['epochs']} recovery epochs, seed {chosen['seed']}"])
    save_checkpoint(ctx.path(PRUNED), found.model, found.plan,
                    meta={"stage": "prune", "search_trial": chosen["number"]})
    outcome = PruneOutcome.model_validate({**result.summary(), "search": found.summary})
    return outcome, [PRUNED]
