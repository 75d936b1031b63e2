"""Walking a dependency group channel by channel: which parameter slices disappear with each channel.

Shared by the scorers that look at weights (global-magnitude, fpgm), at gradients (taylor) or at the
producers of a group (beta-rank).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
import torch_pruning as tp
from torch_pruning.pruner.function import ConvPruner, DepthwiseConvPruner, LinearPruner

ValueOf = Callable[[torch.Tensor], torch.Tensor]


def _detached(p: torch.Tensor) -> torch.Tensor:
    return p.detach()


def item_kind(item: Any) -> str | None:
    """'out' (the layer's own output channels: conv, depthwise conv, linear), 'in' (a consumer's input
    channels), 'norm' (a BatchNorm's channels) or None for everything else (adds, reshapes, ...)."""
    mod = item.dep.target.module
    pruner = getattr(item.dep.handler, "__self__", None)
    side = "out" if item.dep.handler.__name__ == "prune_out_channels" else "in"
    if isinstance(mod, nn.modules.conv._ConvNd) and isinstance(pruner, DepthwiseConvPruner):
        return "out"  # a depthwise filter goes with its channel whichever side the group reaches it from
    if isinstance(mod, nn.modules.conv._ConvNd) and isinstance(pruner, ConvPruner):
        return side
    if isinstance(mod, nn.Linear) and isinstance(pruner, LinearPruner):
        return side
    if isinstance(mod, nn.modules.batchnorm._BatchNorm) and side == "out":
        return "norm" if mod.affine else None
    return None


def _in_rows(mod: nn.Module, w: torch.Tensor, idxs: torch.Tensor) -> torch.Tensor:
    """Rows (one per input channel in ``idxs``) of the weights that read that channel."""
    if not isinstance(mod, nn.modules.conv._ConvNd):  # linear
        return w[:, idxs].t()
    if mod.transposed:  # (C_in, C_out/groups, k...) -- rows are already per input channel
        return w[idxs].flatten(1)
    groups = mod.groups
    per_group_in = w.shape[1]
    per_group_out = w.shape[0] // groups
    grouped = w.reshape(groups, per_group_out, per_group_in, *w.shape[2:])
    return grouped[idxs // per_group_in, :, idxs % per_group_in].flatten(1)


def channel_rows(group: tp.Group, value_of: ValueOf = _detached, norms: bool = False, bias: bool = False
                 ) -> list[tuple[torch.Tensor, list[int], str, nn.Module]]:
    """Per-channel slices of ``value_of(parameter)`` for every parameterised member of ``group``.

    Returns (rows [len(idxs), elements], root_idxs, kind, module) per member; kind is 'out', 'in' or 'norm'.
    ``norms`` adds BatchNorm γ (and β with ``bias``); ``bias`` adds conv/linear biases to the 'out' rows.
    Each (module, kind) appears once; members whose root indices are unknown are skipped.
    """
    out: list[tuple[torch.Tensor, list[int], str, nn.Module]] = []
    seen: set[tuple[int, str]] = set()
    for item in group:
        kind = item_kind(item)
        mod = item.dep.target.module
        if kind is None or (kind == "norm" and not norms) or (id(mod), kind) in seen:
            continue
        if any(r is None for r in item.root_idxs):
            continue
        seen.add((id(mod), kind))
        idxs = torch.as_tensor(list(item.idxs), dtype=torch.long)
        if kind == "norm":
            rows = value_of(mod.weight)[idxs].unsqueeze(1)
            if bias and mod.bias is not None:
                rows = torch.cat([rows, value_of(mod.bias)[idxs].unsqueeze(1)], 1)
        elif kind == "out":
            w = value_of(mod.weight)
            if getattr(mod, "transposed", False):
                w = w.transpose(0, 1)
            rows = w[idxs].flatten(1)
            if bias and getattr(mod, "bias", None) is not None:
                rows = torch.cat([rows, value_of(mod.bias)[idxs].unsqueeze(1)], 1)
        else:
            rows = _in_rows(mod, value_of(mod.weight), idxs)
        out.append((rows, list(item.root_idxs), kind, mod))
    return out
