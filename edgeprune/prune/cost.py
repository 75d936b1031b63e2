"""Fast MAC/parameter estimates for a keep-allocation, so the budget search needs no model rebuilds.

Spatial sizes are taken from one traced forward of the dense model (pruning channels never changes them);
channel counts follow each group's members. The estimate is calibrated against torch-pruning's counter on
the dense model, and the search's final answer is always checked with the real counter.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from edgeprune.budget import count
from edgeprune.prune.graph import ChannelGroup


@dataclass
class _Layer:
    module: nn.Module
    in_ch: int
    out_ch: int
    spatial: int  # output positions per sample
    per_channel: int  # kernel elements per (in/groups, out) pair
    depthwise: bool


class CostModel:
    def __init__(self, model: nn.Module, example_input: torch.Tensor) -> None:
        self.layers: list[_Layer] = []
        hooks = []
        spatial: dict[nn.Module, int] = {}

        def record(mod: nn.Module, _inp: object, out: torch.Tensor) -> None:
            spatial[mod] = int(out[0].numel() // out.shape[1]) if out.dim() > 2 else 1

        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)):
                hooks.append(m.register_forward_hook(record))
        with torch.no_grad():
            model.eval()(example_input)
        for h in hooks:
            h.remove()
        for m, hw in spatial.items():
            if isinstance(m, nn.Conv2d):
                dw = m.groups > 1 and m.groups == m.in_channels
                self.layers.append(_Layer(m, m.in_channels, m.out_channels, hw,
                                          m.kernel_size[0] * m.kernel_size[1], dw))
            elif isinstance(m, nn.Linear):
                self.layers.append(_Layer(m, m.in_features, m.out_features, 1, 1, False))
            else:
                self.layers.append(_Layer(m, m.num_features, m.num_features, hw, 0, True))
        raw_macs, raw_params = self._raw({})
        true_macs, true_params = count(model, example_input)
        self.scale = (true_macs / max(raw_macs, 1), true_params / max(raw_params, 1))

    def _raw(self, removed: dict[tuple[nn.Module, str], int]) -> tuple[float, float]:
        macs = params = 0.0
        for layer in self.layers:
            cin = layer.in_ch - removed.get((layer.module, "in"), 0)
            cout = layer.out_ch - removed.get((layer.module, "out"), 0)
            if layer.per_channel == 0:  # batch norm: scale and shift per channel
                macs += 2 * cout * layer.spatial
                params += 2 * cout
                continue
            fan_in = 1 if layer.depthwise else cin
            macs += cout * fan_in * layer.per_channel * layer.spatial
            params += cout * fan_in * layer.per_channel + cout
        return macs, params

    def estimate(self, groups: list[ChannelGroup], keep: dict[str, int]) -> tuple[float, float]:
        """(MACs, params) after keeping ``keep[root]`` channels of each group."""
        removed: dict[tuple[nn.Module, str], int] = {}
        for g in groups:
            drop = g.channels - keep.get(g.root_name, g.channels)
            if drop <= 0:
                continue
            seen = set()
            for item in g.group:
                mod = item.dep.target.module
                if not isinstance(mod, nn.Module):
                    continue
                side = "out" if "out" in item.dep.handler.__name__ else "in"
                if (mod, side) in seen:
                    continue
                seen.add((mod, side))
                n = round(len(item.idxs) * drop / g.channels)
                removed[(mod, side)] = removed.get((mod, side), 0) + n
                if isinstance(mod, nn.Conv2d) and mod.groups > 1 and mod.groups == mod.in_channels and side == "out":
                    removed.setdefault((mod, "in"), 0)
        macs, params = self._raw(removed)
        return macs * self.scale[0], params * self.scale[1]
