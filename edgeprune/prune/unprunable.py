"""Find the channel groups torch-pruning maps wrongly (channel shuffle, channel split, unusual reshapes).

torch-pruning follows channels through convs, norms, adds, concatenations and flattens. Through a channel
shuffle (reshape -> transpose -> reshape) it either fails to work out a mapping or assumes channels pass one to
one, and pruning such a group would silently mix up channels or break shapes. So every group is tried: pruning
some of its channels from a copy must give exactly what the original model computes with those channels
switched off (weights and norm affine zeroed). Groups that fail, or that touch a node whose mapping failed, are
left unpruned and reported with the reason. All groups are tried at once; only on a failure are they split.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from edgeprune.prune.graph import ChannelGroup, GuardedGraph, build_graph, failed_node_of

__all__ = ["Unprunable", "split_unprunable"]

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
_CACHE: dict[str, dict[str, str]] = {}  # model structure + input shape -> {root: reason}
_CACHE_SIZE = 64


@dataclass(frozen=True)
class Unprunable:
    """A layer whose output channels stay as they are, and why."""

    layer: str
    reason: str

    def summary(self) -> dict[str, str]:
        return {"layer": self.layer, "reason": self.reason}


def _plain(idxs: Any) -> list[int]:
    return [int(getattr(i, "idx", i)) for i in idxs]


def _trial_channels(channels: int) -> list[int]:
    """A fixed pseudo-random third of the channels: no regular pattern a shuffle or reversal would map onto
    itself, so a channel mapped to the wrong place changes the result."""
    order = torch.randperm(channels, generator=torch.Generator().manual_seed(channels)).tolist()
    return sorted(order[: max(1, channels // 3)])


def _mask(graph: GuardedGraph, group: ChannelGroup, drop: list[int], copy_of: dict[nn.Module, nn.Module]) -> None:
    """Zero, in the copy, everything pruning ``drop`` of ``group`` would remove from its outputs."""
    fn = graph.get_pruner_of_module(group.root).prune_out_channels
    for dep, idxs in graph.get_pruning_group(group.root, fn, drop):
        module = copy_of.get(dep.target.module)
        idx = torch.tensor(_plain(idxs), dtype=torch.long)
        if module is None or idx.numel() == 0:
            continue
        out_fn = graph.is_out_channel_pruning_fn(dep.handler)
        if isinstance(module, _NORMS) or (out_fn and isinstance(module, (nn.Conv2d, nn.Linear))):
            with torch.no_grad():
                if module.weight is not None:
                    module.weight[idx] = 0
                if module.bias is not None:
                    module.bias[idx] = 0


def _trial(model: nn.Module, graph: GuardedGraph, groups: list[ChannelGroup], x: torch.Tensor) -> str | None:
    """None when pruning ``groups`` together equals switching their channels off; else what went wrong."""
    names = {m: n for n, m in model.named_modules()}
    masked = copy.deepcopy(model).eval()
    by_name = dict(masked.named_modules())
    copy_of = {m: by_name[n] for m, n in names.items()}
    pruned = copy.deepcopy(model).eval()
    try:
        pruned_graph = build_graph(pruned, x)
        modules = dict(pruned.named_modules())
        for g in groups:
            drop = _trial_channels(g.channels)
            _mask(graph, g, drop, copy_of)
            root = modules[g.root_name]
            pruner = pruned_graph.get_pruner_of_module(root)
            pruned_graph.get_pruning_group(root, pruner.prune_out_channels, drop).prune()
        with torch.no_grad():
            got, want = pruned(x), masked(x)
    except Exception as exc:  # a wrong mapping often breaks shapes
        first = (str(exc).strip().splitlines() or [""])[0][:120]
        return f"pruning it breaks the model ({type(exc).__name__}: {first})"
    if got.shape != want.shape:
        return f"pruning it changes the output shape {tuple(want.shape)} -> {tuple(got.shape)}"
    scale = float(want.abs().max()) + 1e-12
    if float((got - want).abs().max()) > 1e-3 * scale:
        return "pruning it changes what the remaining channels compute (channels shuffled, split or reshaped)"
    return None


def _bad_groups(model: nn.Module, graph: GuardedGraph, groups: list[ChannelGroup], x: torch.Tensor,
                why: dict[str, str]) -> None:
    """Split ``groups`` until each failing trial names one group (few trials when most groups are fine)."""
    if not groups:
        return
    reason = _trial(model, graph, groups, x)
    if reason is None:
        return
    if len(groups) == 1:
        why[groups[0].root_name] = reason
        return
    half = len(groups) // 2
    _bad_groups(model, graph, groups[:half], x, why)
    _bad_groups(model, graph, groups[half:], x, why)


def _key(model: nn.Module, x: torch.Tensor) -> str:
    return hashlib.sha256(f"{model}\n{tuple(x.shape)}".encode()).hexdigest()


def split_unprunable(model: nn.Module, graph: GuardedGraph, groups: list[ChannelGroup],
                     example_input: torch.Tensor) -> tuple[list[ChannelGroup], list[Unprunable]]:
    """(groups safe to prune, layers left unpruned with the reason), in the order of ``groups``."""
    key = _key(model, example_input)
    why = _CACHE.get(key)
    if why is None:
        why = {}
        for g in groups:
            failure = failed_node_of(g.group, graph)
            if failure is not None:
                why[g.root_name] = f"torch-pruning cannot map its channels through {failure.op} ({failure.error})"
        x = torch.randn(example_input.shape, generator=torch.Generator().manual_seed(0)).to(example_input)
        was_training = model.training
        model.eval()
        try:
            _bad_groups(model, graph, [g for g in groups if g.root_name not in why], x, why)
        finally:
            model.train(was_training)
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = why
    keep = [g for g in groups if g.root_name not in why]
    left: dict[str, str] = {}
    for g in groups:
        if g.root_name in why:
            for name in _out_layers(model, graph, g):
                left.setdefault(name, why[g.root_name])
    return keep, [Unprunable(n, r) for n, r in left.items()]


def _out_layers(model: nn.Module, graph: GuardedGraph, group: ChannelGroup) -> list[str]:
    """The root and every other conv/linear whose output channels the group would prune."""
    names = {m: n for n, m in model.named_modules()}
    out = [group.root_name]
    for dep, _ in group.group:
        m = dep.target.module
        if isinstance(m, (nn.Conv2d, nn.Linear)) and graph.is_out_channel_pruning_fn(dep.handler) and m in names:
            if names[m] not in out:
                out.append(names[m])
    return out
