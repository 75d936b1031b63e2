"""L1 sparsity on BatchNorm scales γ, as an ``after_backward`` hook (methods.md §3.2 and §3.6 step 2).

``BNScaleRegulariser`` adds λ·sign(γ)·m to γ's gradient after ``loss.backward()`` and before the optimizer
step, where m is a 0/1 mask per BN channel. Network Slimming is m ≡ 1 on every BN (``everywhere``);
MaskSparsity puts m = 1 only on the channels chosen for pruning (``from_groups``): one mask per dependency
group in root-index space, mapped through every coupled BN's ``root_idxs``, so all BNs on one residual
stream are pushed on the same channels.

Masks are keyed by module name and resolved on the model the hook is called with, so the hook works on
any copy of the model it was built from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.nn as nn

from edgeprune.prune.graph import ChannelGroup

_BN = nn.modules.batchnorm._BatchNorm


def _bn_names(model: nn.Module) -> dict[nn.Module, str]:
    return {m: n for n, m in model.named_modules() if isinstance(m, _BN) and m.weight is not None}


class BNScaleRegulariser:
    """``after_backward`` hook: γ.grad += λ·sign(γ)·mask for every BN in ``masks``."""

    def __init__(self, masks: Mapping[str, torch.Tensor], lam: float) -> None:
        self.masks = {name: m.detach().float().cpu() for name, m in masks.items()}
        self.lam = float(lam)
        self.calls = 0

    @classmethod
    def everywhere(cls, model: nn.Module, lam: float) -> BNScaleRegulariser:
        """Network Slimming: every BN scale of the model."""
        return cls({n: torch.ones(m.num_features) for m, n in _bn_names(model).items()}, lam)

    @classmethod
    def from_groups(cls, model: nn.Module, groups: Iterable[ChannelGroup], drop: Mapping[str, Iterable[int]],
                    lam: float) -> BNScaleRegulariser:
        """MaskSparsity: ``drop[root]`` lists root-space channel indices of each group to push to zero."""
        names = _bn_names(model)
        masks = {n: torch.zeros(m.num_features) for m, n in names.items()}
        for g in groups:
            chosen = {int(i) for i in drop.get(g.root_name, ())}
            if not chosen:
                continue
            for item in g.group:
                mod = item.dep.target.module
                if mod not in names:
                    continue
                for local, root in zip(item.idxs, item.root_idxs, strict=True):
                    if int(root) in chosen:
                        masks[names[mod]][int(local)] = 1.0
        return cls(masks, lam)

    def __call__(self, model: nn.Module) -> None:
        modules = dict(model.named_modules())
        self.calls += 1
        with torch.no_grad():
            for name, mask in self.masks.items():
                gamma = modules[name].weight
                if not gamma.requires_grad:
                    continue
                if gamma.grad is None:
                    gamma.grad = torch.zeros_like(gamma)
                gamma.grad.add_(self.lam * torch.sign(gamma) * mask.to(gamma.device, gamma.dtype))

    def masked_gammas(self, model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """(|γ| of masked channels, |γ| of every other BN channel of the model)."""
        masked, other = [], []
        for m, name in _bn_names(model).items():
            gamma = m.weight.detach().abs().float().cpu()
            mask = self.masks.get(name, torch.zeros_like(gamma)).bool()
            masked.append(gamma[mask])
            other.append(gamma[~mask])
        cat = lambda xs: torch.cat(xs) if xs else torch.zeros(0)  # noqa: E731
        return cat(masked), cat(other)

    def stats(self, model: nn.Module, threshold: float) -> dict[str, Any]:
        """Mean |γ| of masked vs. unmasked channels and the share of each below ``threshold``."""
        masked, other = self.masked_gammas(model)

        def describe(v: torch.Tensor) -> dict[str, Any]:
            if not v.numel():
                return {"channels": 0}
            return {"channels": int(v.numel()), "mean_abs": round(float(v.mean()), 6),
                    "max_abs": round(float(v.max()), 6),
                    "fraction_below_threshold": round(float((v <= threshold).float().mean()), 4)}

        return {"threshold": threshold, "masked": describe(masked), "unmasked": describe(other)}


class LastState:
    """``after_backward`` hook keeping a copy of the latest weights (the state one optimizer step before the end).

    The pipeline's training loop restores its best-validation epoch at the end; sparse training needs the
    last weights instead, so ``restore`` puts them back when the loop did not end on its last epoch.
    """

    def __init__(self) -> None:
        self.state: dict[str, torch.Tensor] | None = None

    def __call__(self, model: nn.Module) -> None:
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def restore(self, model: nn.Module, result: Any) -> bool:
        history, best = getattr(result, "history", None), getattr(result, "best_epoch", None)
        ended_on_last = not history or best is None or best == len(history)
        if self.state is None or ended_on_last:
            return False
        model.load_state_dict(self.state)
        return True
