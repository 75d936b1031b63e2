"""β-rank (methods.md §1, §7): streaming statistics against an unfold reference, the two β directions,
ε-guards, normalisation, alignment with root channels in residual groups, and use of every batch."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from edgeprune.models import create_model
from edgeprune.prune import PruneContext
from edgeprune.prune.activation_stats import collect_conv_stats
from edgeprune.prune.criteria import create_criterion
from edgeprune.prune.criteria.beta_rank import BetaRankCriterion, beta_scores, minmax
from edgeprune.prune.graph import ChannelGroup, build_graph, protected_modules, prunable_groups


def _batches(n: int, size: int = 16, seed: int = 0, channels: int = 3) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(4, channels, size, size, generator=gen), torch.zeros(4, dtype=torch.long))
            for _ in range(n)]


def _groups(model: nn.Module, x: torch.Tensor, protect: bool = True) -> list[ChannelGroup]:
    return prunable_groups(model, build_graph(model, x), protected_modules(model, protect, True), 1, 0.0)


def _prepared(model: nn.Module, batches: list, protect: bool = True, **options: object
              ) -> tuple[BetaRankCriterion, list[ChannelGroup]]:
    groups = _groups(model, batches[0][0][:1], protect)
    crit = create_criterion("beta-rank", **options)
    ctx = PruneContext(example_input=batches[0][0][:1], calib_batches=batches, log=lambda _: None)
    crit.prepare(model, groups, ctx)
    return crit, groups


def _unfold_sigma_in(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """Reference: std over samples × receptive-field elements of each input-channel group, from F.unfold."""
    with torch.no_grad():
        out_hw = conv(x).shape[2:]
    x = x.double()
    padding = conv.padding
    if padding == "same":  # odd kernels: symmetric
        padding = tuple(d * (k - 1) // 2 for d, k in zip(conv.dilation, conv.kernel_size, strict=True))
    if conv.padding_mode != "zeros":
        x = F.pad(x, conv._reversed_padding_repeated_twice, mode=conv.padding_mode)
        padding = (0, 0)
    cols = F.unfold(x, conv.kernel_size, conv.dilation, padding, conv.stride)  # (N, C·kh·kw, L)
    n, _, positions = cols.shape
    per_group = cols.reshape(n, conv.groups, -1, positions).permute(1, 3, 0, 2).reshape(conv.groups, positions, -1)
    return per_group.std(dim=2, unbiased=False).reshape(conv.groups, *out_hw)


@pytest.mark.parametrize(
    "cin,cout,kernel,stride,padding,dilation,groups,mode",
    [
        (3, 5, 3, 1, 1, 1, 1, "zeros"),
        (3, 5, 3, 2, 1, 1, 1, "zeros"),  # stride 2 with padding
        (4, 6, 5, 2, 2, 1, 2, "zeros"),  # grouped
        (6, 6, 3, 2, 1, 1, 6, "zeros"),  # depthwise, stride 2
        (3, 4, 3, 1, 2, 2, 1, "zeros"),  # dilated
        (3, 4, 3, 1, 1, 1, 1, "reflect"),
        (3, 4, 1, 1, 0, 1, 1, "zeros"),  # pointwise
        (4, 4, 3, 1, "same", 2, 4, "zeros"),  # string padding, dilated depthwise
    ],
)
def test_streaming_sigma_in_equals_unfold_reference(cin, cout, kernel, stride, padding, dilation, groups, mode):
    torch.manual_seed(0)
    conv = nn.Conv2d(cin, cout, kernel, stride, padding, dilation, groups, bias=True, padding_mode=mode)
    batches = [torch.randn(3, cin, 11, 11) * 2 + 0.5 for _ in range(3)]  # odd size: uneven stride coverage
    stats = collect_conv_stats(conv, [conv], batches)[conv]
    every = torch.cat(batches)
    reference = _unfold_sigma_in(every, conv)
    assert stats.sigma_in().shape == reference.shape
    assert torch.allclose(stats.sigma_in(), reference, atol=1e-6, rtol=0)
    with torch.no_grad():
        out = conv(every).double()
    assert torch.allclose(stats.sigma_out(), out.std(0, unbiased=False), atol=1e-6, rtol=0)
    assert stats.samples == 9


def test_large_batches_are_streamed_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    import edgeprune.prune.activation_stats as activation_stats

    conv = nn.Conv2d(3, 4, 3, 2, 1)
    batches = [torch.randn(5, 3, 9, 9) for _ in range(2)]
    whole = collect_conv_stats(conv, [conv], batches)[conv]
    monkeypatch.setattr(activation_stats, "CHUNK_ELEMENTS", 10)  # one sample per float64 copy
    chunked = collect_conv_stats(conv, [conv], batches)[conv]
    assert chunked.samples == whole.samples == 10
    assert torch.allclose(chunked.sigma_in(), whole.sigma_in())
    assert torch.allclose(chunked.sigma_out(), whole.sigma_out())


def _toy(bias: bool = True) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, 1, 1, bias=bias), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, 2, 1, bias=bias), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, 1, 1, bias=bias), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3),
    ).eval()


@pytest.mark.parametrize("mode,power", [("code", 2), ("paper", 0)])
def test_scaling_one_filter_by_alpha(mode: str, power: int) -> None:
    batches = _batches(2)
    model = _toy()
    before = _prepared(model, batches, beta_mode=mode, normalize=False)[0].layer_scores["3"].double()
    alpha, k = 3.0, 2
    with torch.no_grad():
        model[3].weight[k] *= alpha
        model[3].bias[k] *= alpha  # the whole filter output scales by alpha
    after = _prepared(model, batches, beta_mode=mode, normalize=False)[0].layer_scores["3"].double()
    assert before[k] > 0
    assert torch.allclose(after[k], before[k] * alpha**power, rtol=1e-5)
    others = torch.arange(8) != k
    assert torch.allclose(after[others], before[others], rtol=1e-5)


def test_code_and_paper_modes_rank_differently() -> None:
    batches = _batches(2)
    code = _prepared(_toy(), batches, beta_mode="code")[0].layer_scores["3"]
    paper = _prepared(_toy(), batches, beta_mode="paper")[0].layer_scores["3"]
    assert not torch.equal(torch.argsort(code), torch.argsort(paper))


@pytest.mark.parametrize("mode", ["code", "paper"])
def test_constant_regions_give_no_inf_or_nan(mode: str) -> None:
    batches = _batches(2)
    for x, _ in batches:  # black border and one black channel in every image, as in fundus photographs
        x[:, :, :4] = 0.0
        x[:, :, :, :4] = 0.0
        x[:, 1] = 0.0
    black = [(torch.zeros(4, 3, 16, 16), torch.zeros(4, dtype=torch.long))]  # an all-black batch too
    model = _toy(bias=False)
    with torch.no_grad():
        model[3].weight[0] = 0.0  # a dead filter: σ_out = 0 everywhere
    stats = collect_conv_stats(model, [model[0]], [x for x, _ in batches])[model[0]]
    assert (stats.sigma_in() < 1e-6).any(), "the guard is exercised"
    for data in (batches, black):
        crit, groups = _prepared(model, data, protect=False, beta_mode=mode)
        for name, raw in crit.layer_scores.items():
            assert torch.isfinite(raw).all(), name
        for g in groups:
            s = crit(g.group)
            assert s is not None and torch.isfinite(s).all() and s.min() >= 0 and s.max() <= 1
    crit, _ = _prepared(model, black, protect=False, beta_mode=mode)
    assert all(float(raw.abs().max()) == 0 for raw in crit.layer_scores.values()), "no valid position: zeros"


def test_positions_below_eps_are_skipped() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1, bias=True)
    with torch.no_grad():
        conv.weight[0, :2] = 0.0  # filter 0 reads only channel 2, which is constant: its output never varies
    x = torch.randn(8, 3, 12, 12)
    x[:, 2] = 0.7
    x[:, :, :6] = 1e-8 * torch.randn(8, 3, 6, 12)  # a near-black band: spread far below eps, but not zero
    stats = collect_conv_stats(conv, [conv], [x])[conv]
    s_in, s_out = stats.sigma_in()[0], stats.sigma_out()
    low = s_in < 1e-6
    assert low.any() and (s_out[1:][:, low] > 0).any(), "outputs still vary a little there"
    magnitude = conv.weight.detach().double().abs().mean((1, 2, 3))
    code = magnitude * torch.where(~low, s_out / s_in, 0).sum((1, 2))
    assert torch.allclose(beta_scores(stats, "code", 1e-6), code, rtol=1e-9, atol=0)
    paper = beta_scores(stats, "paper", 1e-6)
    assert paper[0] == 0, "paper mode skips positions where the output does not vary"
    keep = ~low & (s_out[1:] >= 1e-6)
    assert torch.allclose(paper[1:], magnitude[1:] * torch.where(keep, s_in / s_out[1:], 0).sum((1, 2)))


def test_normalised_scores_are_in_unit_interval_per_layer() -> None:
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=3).eval()
    crit, groups = _prepared(model, _batches(2, size=32))
    assert crit._scores
    for raw in crit._scores.values():
        assert float(raw.min()) == 0.0 and float(raw.max()) == 1.0
    for g in groups:
        s = crit(g.group)
        assert s is not None and s.shape == (g.channels,) and s.min() >= 0 and s.max() <= 1


def test_residual_group_scores_follow_a_channel_permutation() -> None:
    torch.manual_seed(0)
    model = create_model("test_resblock", num_classes=3).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.running_var.uniform_(0.5, 2.0)
    batches = _batches(2)
    crit, groups = _prepared(model, batches)
    stream = next(g for g in groups if "conv2" in g.member_names(model) and "shortcut.0" in g.member_names(model))
    scores = crit(stream.group)
    # the group score is the mean of the two producers' normalised scores, in root order
    expected = (minmax(crit.layer_scores["conv2"]) + minmax(crit.layer_scores["shortcut.0"])) / 2
    assert torch.allclose(scores, expected.float(), atol=1e-6)

    perm = torch.randperm(16, generator=torch.Generator().manual_seed(3))
    permuted = create_model("test_resblock", num_classes=3).eval()
    permuted.load_state_dict(model.state_dict())
    with torch.no_grad():  # reorder the residual stream's channels: the network computes the same function
        for conv in (permuted.conv2, permuted.shortcut[0]):
            conv.weight.copy_(conv.weight[perm])
        for bn in (permuted.bn2, permuted.shortcut[1]):
            for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
                t.copy_(t[perm])
        permuted.classifier.weight.copy_(permuted.classifier.weight[:, perm])
    probe = batches[0][0]
    assert torch.allclose(permuted(probe), model(probe), atol=1e-5)
    crit_p, groups_p = _prepared(permuted, batches)
    stream_p = next(g for g in groups_p if g.root_name == stream.root_name)
    assert torch.allclose(crit_p(stream_p.group), scores[perm], atol=1e-6)


def test_statistics_stream_over_every_batch() -> None:
    model = _toy()
    b1, b2 = _batches(2)
    both = _prepared(model, [b1, b2], normalize=False)[0].layer_scores
    first = _prepared(model, [b1], normalize=False)[0].layer_scores
    capped = _prepared(model, [b1, b2], normalize=False, max_batches=1)[0].layer_scores
    merged = _prepared(model, [(torch.cat([b1[0], b2[0]]), torch.cat([b1[1], b2[1]]))], normalize=False)[0].layer_scores
    for name in both:
        assert not torch.allclose(both[name], first[name]), name
        assert torch.equal(capped[name], first[name]), name
        assert torch.allclose(both[name], merged[name], rtol=1e-5), "streaming equals one big batch"


def test_raw_score_formula_on_one_layer() -> None:
    model = _toy()
    batches = _batches(2)
    crit, _ = _prepared(model, batches, normalize=False, beta_mode="paper", eps=1e-6)
    stats = collect_conv_stats(model, [model[6]], [x for x, _ in batches])[model[6]]
    s_in, s_out = stats.sigma_in()[0], stats.sigma_out()
    ok = (s_in >= 1e-6) & (s_out >= 1e-6)
    manual = model[6].weight.detach().double().abs().mean((1, 2, 3)) * torch.where(ok, s_in / s_out, 0).sum((1, 2))
    assert torch.allclose(beta_scores(stats, "paper"), manual)
    assert torch.allclose(crit.layer_scores["6"].double(), manual, rtol=1e-6)


def test_linear_producers_fall_back_to_normalised_l1() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)).eval()
    crit, groups = _prepared(model, _batches(1), protect=True)
    hidden = next(g for g in groups if g.root_name == "4")
    expected = minmax(model[4].weight.detach().double().abs().sum(1)).float()
    assert torch.allclose(crit(hidden.group), expected)
