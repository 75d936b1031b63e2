"""The allocation against a hand-made table (no device): it meets the target in steps, where latency is."""

from __future__ import annotations

import pytest
import torch

from edgeprune.latency.allocate import Predictor, allocate, model_layers
from edgeprune.latency.table import LatencyTable, LayerShape, Point
from edgeprune.prune.fit import setup_groups
from edgeprune.prune.types import PruneSettings
from tests.latency._latnet import LatNet

X = torch.randn(1, 3, 32, 32)


def _table(conv3_ms: float) -> LatencyTable:
    """conv2 (16->32) costs 1 ms, conv3 (32->32) ``conv3_ms``; both halve at 16 output channels."""
    c2, c3 = LayerShape("conv", 16, 32, 3, 1, 1, 32, 32), LayerShape("conv", 32, 32, 3, 1, 1, 32, 32)
    lin = LayerShape("linear", 32, 3)
    return LatencyTable({"kind": "test"}, [
        Point(c2.key(), "out", 32, 1.0), Point(c2.key(), "out", 16, 0.5),
        Point(c3.key(), "out", 32, conv3_ms), Point(c3.key(), "out", 16, conv3_ms / 2),
        Point(c3.key(), "in", 16, conv3_ms * 0.9),
        Point(lin.key(), "out", 3, 0.01), Point(lin.key(), "in", 16, 0.01),
    ])  # fmt: skip


@pytest.mark.parametrize(("conv3_ms", "pruned"), [(4.0, "conv3"), (0.2, "conv2")])
def test_channels_go_where_the_latency_is(conv3_ms: float, pruned: str) -> None:
    model = LatNet().eval()
    groups = setup_groups(model, X, PruneSettings())
    scores = {g.root_name: torch.ones(g.channels) for g in groups}  # equal importance: latency decides
    layers = model_layers(model, X, groups)
    assert {u.name: u.axes for u in layers} == {"conv2": {"out"}, "conv3": {"in", "out"}, "classifier": {"in"}}
    dense = 1.0 + conv3_ms + 0.01 + 0.5  # + fixed costs the table does not see
    predict = Predictor(_table(conv3_ms), layers, groups, dense)
    target = dense - 0.3
    keep = allocate(groups, scores, predict, target, step=16)
    assert predict(keep) <= target and all(k % 16 == 0 for k in keep.values())
    assert keep[pruned] == 16 and sum(k < 32 for k in keep.values()) == 1  # one step where it saves most


def test_a_missed_target_rescales_the_savings_and_cuts_deeper() -> None:
    """When the whole model saves less than the table promised, the savings are scaled down by the measured ratio
    and the allocation goes deeper (NetAdapt's measure-and-adjust loop)."""
    from edgeprune.latency.calibrate import Point, next_scale

    model = LatNet().eval()
    groups = setup_groups(model, X, PruneSettings())
    scores = {g.root_name: torch.ones(g.channels) for g in groups}
    layers = model_layers(model, X, groups)
    dense = 1.0 + 4.0 + 0.01 + 0.5
    predict = Predictor(_table(4.0), layers, groups, dense)
    target = dense - 1.2
    first = allocate(groups, scores, predict, target, step=16)
    promised = dense - predict(first)
    measured = dense - promised / 2  # the real model saved half of what the table promised
    assert measured > target
    scale = next_scale([Point(1.0, first, predict(first), measured)], dense, target, target)
    assert scale == pytest.approx(0.5)
    predict.saving_scale = scale
    assert predict(first) == pytest.approx(measured)  # the corrected table now predicts what was measured
    second = allocate(groups, scores, predict, target, step=16)
    assert sum(second.values()) < sum(first.values()) and predict(second) <= target
    slower = Point(1.0, first, predict(first), dense + 1.0)
    assert next_scale([slower], dense, target, target) is None  # a slower "pruned" model teaches nothing


