"""What every trial of one worker shares: the config, a context without the test split, the dense model."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from rich.console import Console

from edgeprune.config import BuildConfig
from edgeprune.pipeline.checkpoints import load_checkpoint
from edgeprune.pipeline.context import BuildContext, PreparedData
from edgeprune.rundir.paths import DENSE
from edgeprune.search.contract import Contract
from edgeprune.train import predict_logits

SEARCH_DIR = "search"


def without_test(data: PreparedData) -> PreparedData:
    """The same prepared data with the test split sealed for the whole search: any read raises."""
    return dataclasses.replace(data, test=data.test.sealed_view("the search"))


def contract_of(cfg: BuildConfig) -> Contract:
    return Contract(max_bal_acc_drop=cfg.verify.max_bal_acc_drop,
                    max_class_sensitivity_drop=cfg.verify.max_class_sensitivity_drop,
                    min_class_sensitivity=cfg.search.min_class_sensitivity, bootstrap=cfg.verify.bootstrap)


@dataclass
class SearchEnv:
    cfg: BuildConfig
    run_dir: Path
    console: Console
    data: PreparedData | None = None  # given by the caller that already holds it (tests, the build stage)
    on_epoch: Callable[..., None] | None = None  # (number, params, epoch, val score) after each recovery epoch

    @cached_property
    def ctx(self) -> BuildContext:
        """A build context whose data has no readable test split."""
        ctx = BuildContext(cfg=self.cfg, run_dir=self.run_dir, console=self.console)
        ctx.__dict__["data"] = without_test(self.data if self.data is not None else ctx.data)
        return ctx

    @cached_property
    def dense(self) -> nn.Module:
        model, _ = load_checkpoint(self.run_dir / DENSE, self.ctx.fresh_model(), self.ctx.example_input)
        return model

    @cached_property
    def dense_val_logits(self) -> np.ndarray:
        return predict_logits(self.dense, self.ctx.data.val.x)

    @cached_property
    def dense_counts(self) -> tuple[int, int]:
        from edgeprune.budget import count

        return count(self.dense, self.ctx.example_input)

    @property
    def contract(self) -> Contract:
        return contract_of(self.cfg)

    @property
    def search_dir(self) -> Path:
        return self.run_dir / SEARCH_DIR

    def trial_checkpoint(self, number: int) -> Path:
        return self.search_dir / "trials" / f"trial-{number:03d}.pt"

    def val_logits(self, model: nn.Module) -> np.ndarray:
        out = predict_logits(model, self.ctx.data.val.x)
        model.train()
        return out


def set_threads(n: int) -> None:
    torch.set_num_threads(max(1, n))
