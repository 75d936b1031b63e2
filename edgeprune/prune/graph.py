"""Channel groups from the dependency graph: coupled layers (residual adds, depthwise) prune together."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch_pruning as tp
from torch_pruning import ops
from torch_pruning.dependency import index_mapping

ROOT_TYPES = (nn.Conv2d, nn.Linear)

# torch-pruning's per-node channel-index mappings (the ops whose channels do not pass through one to one)
_MAPPERS = {
    ops.OPTYPE.CONCAT: index_mapping.update_concat_index_mapping,
    ops.OPTYPE.SPLIT: index_mapping.update_split_index_mapping,
    ops.OPTYPE.RESHAPE: index_mapping.update_reshape_index_mapping,
    ops.OPTYPE.UNBIND: index_mapping.update_unbind_index_mapping,
    ops.OPTYPE.EXPAND: index_mapping.update_expand_index_mapping,
    ops.OPTYPE.SLICE: index_mapping.update_slice_index_mapping,
}


@dataclass
class MappingFailure:
    """A node whose channel mapping torch-pruning could not work out (e.g. the reshapes of a channel shuffle)."""

    node: Any
    op: str
    error: str


def _op_name(node: Any) -> str:
    """The traced op of a node, e.g. 'ViewBackward0'."""
    return type(getattr(node, "grad_fn", None)).__name__ if getattr(node, "grad_fn", None) is not None else str(
        node.type)


def _is_flatten(node: Any) -> bool:
    """A reshape torch-pruning maps correctly: every path from it reaches a Linear layer through nothing but
    further flattens, norms and elementwise ops (the flatten before a classifier)."""
    passing = (ops.OPTYPE.RESHAPE, ops.OPTYPE.ELEMENTWISE, ops.OPTYPE.BN)
    seen, todo = set(), list(node.outputs)
    if not todo:
        return False
    while todo:
        nxt = todo.pop()
        if id(nxt) in seen or nxt.type == ops.OPTYPE.LINEAR:
            continue
        seen.add(id(nxt))
        if nxt.type not in passing or not nxt.outputs or len(seen) > 32:
            return False
        todo.extend(nxt.outputs)
    return True


class GuardedGraph(tp.DependencyGraph):
    """A dependency graph whose channel mappings never raise: a node whose mapping fails (torch-pruning divides
    by zero on a channel shuffle's reshapes) is recorded in ``mapping_failures`` and keeps the default mapping;
    the groups through it are then found unprunable by ``edgeprune.prune.unprunable``."""

    def __init__(self) -> None:
        super().__init__()
        self.mapping_failures: dict[int, MappingFailure] = {}

    @contextmanager
    def _guarded(self) -> Iterator[None]:
        original = index_mapping.update_index_mapping
        index_mapping.update_index_mapping = self._update_mappings
        try:
            yield
        finally:
            index_mapping.update_index_mapping = original

    def _update_mappings(self, graph: tp.DependencyGraph) -> None:
        for node in list(graph.module2node.values()):
            mapper = _MAPPERS.get(node.type)
            if mapper is None or id(node) in self.mapping_failures:
                continue
            if node.type == ops.OPTYPE.RESHAPE and not _is_flatten(node):
                self.mapping_failures[id(node)] = MappingFailure(
                    node, _op_name(node), "a reshape that regroups channels, e.g. a channel shuffle")
                continue
            try:
                mapper(graph, node)
            except Exception as exc:  # torch-pruning's shape inference has no answer for this node
                self.mapping_failures[id(node)] = MappingFailure(node, _op_name(node), f"{type(exc).__name__}: {exc}")

    def build_dependency(self, *args: Any, **kwargs: Any) -> tp.DependencyGraph:
        with self._guarded():
            return super().build_dependency(*args, **kwargs)

    def get_pruning_group(self, *args: Any, **kwargs: Any) -> tp.Group:
        with self._guarded():
            return super().get_pruning_group(*args, **kwargs)


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


def failed_node_of(group: tp.Group, graph: tp.DependencyGraph) -> MappingFailure | None:
    """The first node of ``group`` whose channel mapping failed (see GuardedGraph), or None."""
    failed = getattr(graph, "mapping_failures", {})
    for dep, _ in group:
        for node in (dep.source, dep.target):
            if id(node) in failed:
                return failed[id(node)]
    return None


def build_graph(model: nn.Module, example_input: torch.Tensor) -> GuardedGraph:
    """Trace ``model`` once and record which channels are coupled (never raises on unmappable nodes)."""
    graph = GuardedGraph()
    graph.build_dependency(model, example_inputs=example_input, verbose=False)
    return graph


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
    failures: dict[str, str] | None = None,
) -> list[ChannelGroup]:
    """All groups whose width may change, in a stable order (by root module name).

    A root whose group torch-pruning cannot even assemble is skipped and named in ``failures`` with the error.
    """
    names = {m: n for n, m in model.named_modules()}
    ignored = set(protected) | set(graph.IGNORED_LAYERS_IN_TRACING)
    visited: set[nn.Module] = set()
    groups = []
    for module in list(graph.module2node):
        if module in ignored or module in visited or not isinstance(module, ROOT_TYPES):
            continue
        pruner = graph.get_pruner_of_module(module)
        channels = pruner.get_out_channels(module) if pruner is not None else None
        if channels is None:
            continue
        try:
            group = graph.get_pruning_group(module, pruner.prune_out_channels, list(range(channels)))
        except Exception as exc:  # torch-pruning's index mappings broke on this group (split, shuffle, ...)
            if failures is not None and module in names:
                failures[names[module]] = f"torch-pruning cannot assemble its group ({type(exc).__name__}: {exc})"
            visited.add(module)
            continue
        out_members = [dep.target.module for dep, _ in group if graph.is_out_channel_pruning_fn(dep.handler)]
        visited.update(out_members)
        if any(m in ignored for m in out_members):
            failure = failed_node_of(group, graph)
            if failure is not None and failures is not None:  # coupled to the stem/classifier only by a bad mapping
                for m in out_members:
                    if m not in ignored and isinstance(m, ROOT_TYPES) and m in names:
                        failures.setdefault(names[m], f"torch-pruning cannot map its channels through {failure.op} "
                                                      f"({failure.error}), which ties them to a protected layer")
            continue
        floor = channel_floor(channels, min_channels, min_keep_ratio)
        if channels <= floor:
            continue
        groups.append(ChannelGroup(names[module], group, channels, floor))
    return sorted(groups, key=lambda g: g.root_name)
