"""β-rank (Homayounfar et al., arXiv 2304.07461; methods.md §1): filter magnitude times a data term.

For each conv filter k, with streamed statistics over B calibration batches (see ``activation_stats``):

    S_k = mean_{c,u,v} |W_k[c,u,v]| · Σ_{valid positions p} r_k(p)

- σ_out(k,p): population std over samples of the raw conv output (before BN, with bias) at position p;
- σ_in(p): population std over samples × receptive-field elements (padding zeros included) of the input
  patch the filter sees at p; a depthwise or grouped conv uses only its own input channels;
- ``beta_mode="code"`` (default): r = σ_out/σ_in, what the authors' released code computes and what produced
  the published tables. ``beta_mode="paper"``: r = σ_in/σ_out, the README equation (standardised regression
  coefficient). They are different criteria (methods.md §1.4): scaling filter k by α scales S_k by α² in code
  mode and leaves it unchanged in paper mode.
- ε-guard: positions with σ_in < eps are skipped (padding and black fundus/dermoscopy borders make σ_in = 0);
  in paper mode positions with σ_out < eps are skipped too. No inf or NaN can reach the scores.

Scores are min-max normalised per layer to [0, 1] (``normalize``), scattered into the group's root channel
order through ``root_idxs`` and averaged over the group's convs whose output channels are in the group
(other members are ignored). Groups whose producers are Linear layers only get their L1 norm, normalised.

Deliberate departures from the released code (methods.md §1.3, §1.5, §1.8), all bugs not reproduced:
the input patch is indexed correctly (NCHW, padding counted, the conv's real stride and dilation, instead of
channel/row-swapped slices over the full width); statistics accumulate over every calibration batch (not one
batch per layer, nor only the last batch); σ_in = 0 is guarded; and no (1 + rank) rescaling of kept filters or
partial weight transfer happens: pruning keeps every surviving parameter (torch-pruning), BN included.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn
import torch_pruning as tp
from pydantic import BaseModel, ConfigDict, Field

from edgeprune.prune.activation_stats import ConvStats, collect_conv_stats
from edgeprune.prune.channels import item_kind
from edgeprune.prune.criteria.registry import CRITERIA
from edgeprune.prune.criterion import Scorer, scatter_to_root
from edgeprune.prune.graph import ChannelGroup
from edgeprune.prune.types import PruneContext


class BetaRankOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    beta_mode: Literal["code", "paper"] = Field("code", description="code: sigma_out/sigma_in; paper: inverse")
    eps: float = Field(1e-6, gt=0.0, description="positions with a smaller spread are skipped")
    normalize: bool = Field(True, description="min-max normalise the scores of each layer to [0, 1]")
    max_batches: int | None = Field(None, ge=1, description="default: every calibration batch")


def beta_scores(stats: ConvStats, mode: str = "code", eps: float = 1e-6) -> torch.Tensor:
    """Raw (unnormalised) β-rank score of every output filter of ``stats.conv`` (float64)."""
    weight = stats.conv.weight.detach().double()
    magnitude = weight.abs().flatten(1).mean(1)
    s_in = stats.sigma_in()
    s_out = stats.sigma_out()
    s_in = s_in.repeat_interleave(s_out.shape[0] // s_in.shape[0], dim=0)  # each filter's input group
    valid = s_in >= eps
    if mode == "code":
        ratio = s_out / s_in.clamp_min(eps)
    else:
        valid &= s_out >= eps
        ratio = s_in / s_out.clamp_min(eps)
    ratio = torch.where(valid, ratio, torch.zeros_like(ratio))
    return magnitude * ratio.flatten(1).sum(1)


def minmax(scores: torch.Tensor) -> torch.Tensor:
    """Scale to [0, 1]; a layer whose scores are all equal gets zeros."""
    lo, hi = scores.min(), scores.max()
    return (scores - lo) / (hi - lo) if hi > lo else torch.zeros_like(scores)


def _producer_convs(groups: list[ChannelGroup]) -> list[nn.Conv2d]:
    convs: dict[int, nn.Conv2d] = {}
    for g in groups:
        for item in g.group:
            mod = item.dep.target.module
            if isinstance(mod, nn.Conv2d) and item_kind(item) == "out":
                convs.setdefault(id(mod), mod)
    return list(convs.values())


@CRITERIA.register("beta-rank")
class BetaRankCriterion(Scorer):
    name = "beta-rank"
    summary = "filter L1 x output/input spread over calibration batches (Beta-Rank), per-layer normalised"
    paper = "https://arxiv.org/abs/2304.07461"
    needs_data = True
    Options = BetaRankOptions
    options: BetaRankOptions

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        self._scores: dict[int, torch.Tensor] | None = None
        self.layer_scores: dict[str, torch.Tensor] = {}  # module name -> raw scores, for reports and tests

    def prepare(self, model: nn.Module, groups: list[ChannelGroup], ctx: PruneContext) -> None:
        batches = ctx.calibration(self.name, self.options.max_batches)
        convs = _producer_convs(groups)
        stats = collect_conv_stats(model, convs, [x for x, _ in batches])
        names = {m: n for n, m in model.named_modules()}
        self._scores, self.layer_scores = {}, {}
        for conv, st in stats.items():
            if st.sums is None:  # never ran in the forward pass: its group falls back to Linear L1 or is skipped
                continue
            raw = beta_scores(st, self.options.beta_mode, self.options.eps)
            self.layer_scores[names.get(conv, str(id(conv)))] = raw
            self._scores[id(conv)] = minmax(raw) if self.options.normalize else raw
        ctx.log(f"beta-rank ({self.options.beta_mode} mode): statistics of {len(convs)} conv(s) over "
                f"{len(batches)} batch(es), {sum(len(x) for x, _ in batches)} image(s)")

    def _linear_l1(self, layer: nn.Linear) -> torch.Tensor:
        l1 = layer.weight.detach().double().abs().sum(1)
        return minmax(l1) if self.options.normalize else l1

    @torch.no_grad()
    def __call__(self, group: tp.Group) -> torch.Tensor | None:
        if self._scores is None:
            raise RuntimeError("beta-rank: prepare() must run before scoring")
        convs, linears = [], []
        seen: set[int] = set()
        for item in group:
            mod = item.dep.target.module
            if item_kind(item) != "out" or id(mod) in seen or any(r is None for r in item.root_idxs):
                continue
            seen.add(id(mod))
            idxs = torch.as_tensor(list(item.idxs), dtype=torch.long)
            if id(mod) in self._scores:
                convs.append((self._scores[id(mod)][idxs], list(item.root_idxs)))
            elif isinstance(mod, nn.Linear):
                linears.append((self._linear_l1(mod)[idxs], list(item.root_idxs)))
        parts = convs or linears
        if not parts:
            return None
        return scatter_to_root(group, parts, len(group[0].idxs)) / len(parts)
