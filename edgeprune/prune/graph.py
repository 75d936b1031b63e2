"""Channel groups from the dependency graph: coupled layers (residual adds, depthwise) prune together."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch_pruning as tp

ROOT_TYPES = (nn.Conv2d, nn.Linear)


@dataclass
class ChannelGroup:
    """One dependency group: the root layer's output channels and everything coupled to them."""

    root_name: str
    group: tp.Group
    channels: int
    floor: int

    @property
    def root(self) -> nn.Module:
        return self.group[0].dep.target.module

    def member_names(self, model: nn.Module) -> list[str]:
        names = {m: n for n, m in model.named_modules()}
        out = []
        for item in self.group:
            mod = item.dep.target.module
            if isinstance(mod, nn.Module) and mod in names and names[mod] not in out:
                out.append(names[mod])
        return out


def build_graph(model: nn.Module, example_input: torch.Tensor) -> tp.DependencyGraph:
    """Trace ``model`` once and record which channels are coupled."""
    return tp.DependencyGraph().build_dependency(model, example_inputs=example_input, verbose=False)


def protected_modules(model: nn.Module, protect_stem: bool, protect_classifier: bool) -> list[nn.Module]:
    """The stem (first conv) and the classifier (last linear) whose outputs must keep their width."""
    out: list[nn.Module] = []
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if protect_stem and convs:
        out.append(convs[0])
    if protect_classifier:
        head = getattr(model, "classifier", None)
        if isinstance(head, nn.Linear):
            out.append(head)
        elif linears:
            out.append(linears[-1])
        elif convs:
            out.append(convs[-1])
    return out


def channel_floor(channels: int, min_channels: int, min_keep_ratio: float) -> int:
    return min(channels, max(min_channels, math.ceil(min_keep_ratio * channels)))


def round_keep(keep: int, channels: int, floor: int, round_to: int | None) -> int:
    """A keep count within [floor, channels], a multiple of ``round_to`` where the group is wider than that."""
    keep = max(floor, min(channels, keep))
    if round_to and channels > round_to:
        keep = max(round_to, int(round(keep / round_to)) * round_to)
        keep = min(channels, keep)
        while keep < floor:
            keep += round_to
        keep = min(channels, keep)
    return keep


def prunable_groups(
    model: nn.Module,
    graph: tp.DependencyGraph,
    protected: list[nn.Module],
    min_channels: int,
    min_keep_ratio: float,
) -> list[ChannelGroup]:
    """All groups whose width may change, in a stable order (by root module name)."""
    names = {m: n for n, m in model.named_modules()}
    groups = []
    for group in graph.get_all_groups(ignored_layers=list(protected), root_module_types=ROOT_TYPES):
        root = group[0].dep.target.module
        channels = len(group[0].idxs)
        floor = channel_floor(channels, min_channels, min_keep_ratio)
        if channels <= floor:
            continue
        groups.append(ChannelGroup(names[root], group, channels, floor))
    return sorted(groups, key=lambda g: g.root_name)
