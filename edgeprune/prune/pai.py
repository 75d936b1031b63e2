"""Layer-wise densities from pruning-at-initialisation scores (methods.md §2.2 step 1).

Each source returns ``{layer name: density}`` for every Conv2d/Linear layer: the fraction of that layer's
weights an unstructured pruning-at-init mask keeps when the whole network keeps ``density`` of its weights.
PreCropping only uses these per-layer fractions, never the masks themselves.

- ``synflow`` (Tanaka et al. 2020, data-free): on a float64 copy with |weights|, BN in eval mode and
  rectifiers replaced by identities, score |θ·∂R/∂θ| for R = sum of the outputs on an all-ones input;
  prune iteratively, keeping ρ^(t/n) after round t of n.
- ``snip`` (Lee et al. 2019, one labelled batch): |θ·∂L/∂θ|, one global top-k.
- ``uniform``: every layer at ``density``.
- ``erk`` (Evci et al. 2020): density ∝ (sum of the kernel's dimensions) / (their product), capped at 1.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn as nn

from edgeprune.errors import EdgepruneError

PAI_SOURCES = ("synflow", "snip", "uniform", "erk")

# activations that would clip or bend SynFlow's positive signal; they become identities on the scoring copy
_RECTIFIERS = (nn.ReLU, nn.ReLU6, nn.Hardtanh, nn.LeakyReLU, nn.ELU, nn.SiLU, nn.Hardswish, nn.GELU, nn.Mish)


def weight_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Every Conv2d and Linear layer by name (the layers a PAI mask prunes)."""
    return {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


def _check_density(density: float) -> None:
    if not 0.0 < density <= 1.0:
        raise EdgepruneError(f"pruning-at-init density must be in (0, 1], got {density}", "lower the reduction")


def _keep_top(scores: dict[str, torch.Tensor], density: float,
              masks: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Keep the globally highest ``density`` fraction of all scores (never re-growing a masked weight)."""
    flat = torch.cat([s.flatten() for s in scores.values()])
    k = max(1, int(round(density * flat.numel())))
    threshold = torch.kthvalue(flat, flat.numel() - k + 1).values if k < flat.numel() else flat.min()
    out = {}
    for name, s in scores.items():
        keep = s >= threshold
        out[name] = keep if masks is None else keep & masks[name]
    return out


def _fractions(masks: dict[str, torch.Tensor]) -> dict[str, float]:
    return {name: float(m.double().mean()) for name, m in masks.items()}


def uniform_densities(model: nn.Module, density: float) -> dict[str, float]:
    _check_density(density)
    return {name: float(density) for name in weight_layers(model)}


def erk_densities(model: nn.Module, density: float) -> dict[str, float]:
    """Erdős–Rényi-kernel densities meeting the global weight density exactly (layers capped at 1)."""
    _check_density(density)
    layers = weight_layers(model)
    sizes = {n: m.weight.numel() for n, m in layers.items()}
    raw = {n: sum(m.weight.shape) / m.weight.numel() for n, m in layers.items()}
    total = sum(sizes.values())
    dense: set[str] = set()
    while True:
        budget = density * total - sum(sizes[n] for n in dense)
        free = sum(raw[n] * sizes[n] for n in layers if n not in dense)
        eps = budget / free if free > 0 else 0.0
        over = {n for n in layers if n not in dense and eps * raw[n] > 1.0}
        if not over:
            break
        dense |= over
    return {n: 1.0 if n in dense else float(eps * raw[n]) for n in layers}


def snip_densities(model: nn.Module, density: float, batch: tuple[torch.Tensor, torch.Tensor],
                   loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> dict[str, float]:
    """SNIP connection sensitivity |θ·∂L/∂θ| on one labelled batch, global top-k."""
    _check_density(density)
    work = copy.deepcopy(model)
    work.train(batch[0].shape[0] > 1)  # batch statistics as in training, unless a single sample
    layers = weight_layers(work)
    work.zero_grad(set_to_none=True)
    loss_fn(work(batch[0]), batch[1]).backward()
    scores = {}
    for name, m in layers.items():
        grad = m.weight.grad if m.weight.grad is not None else torch.zeros_like(m.weight)
        scores[name] = (m.weight.detach() * grad).abs().double()
    return _fractions(_keep_top(scores, density))


def _linearised_copy(model: nn.Module) -> nn.Module:
    work = copy.deepcopy(model).double().eval()
    for parent in list(work.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, _RECTIFIERS):
                setattr(parent, child_name, nn.Identity())
    with torch.no_grad():
        for p in work.parameters():
            p.abs_()
        for m in work.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
    return work


def synflow_densities(model: nn.Module, density: float, example_input: torch.Tensor,
                      rounds: int = 100, max_size: int | None = None) -> dict[str, float]:
    """Iterative SynFlow (data-free) on a float64, sign-free, linearised copy of ``model``.

    ``max_size`` caps the all-ones input's longer side (aspect kept): in the linearised, average-pooled
    network the scores hardly depend on resolution except at borders, and float64 convolutions are slow.
    """
    _check_density(density)
    if rounds < 1:
        raise EdgepruneError(f"synflow needs at least one round, got {rounds}", "use e.g. synflow_rounds=100")
    work = _linearised_copy(model)
    layers = weight_layers(work)
    originals = {n: m.weight.detach().clone() for n, m in layers.items()}
    masks = {n: torch.ones_like(w, dtype=torch.bool) for n, w in originals.items()}
    shape = list(example_input.shape[1:])
    if max_size is not None and example_input.dim() == 4 and max(shape[1:]) > max_size:
        scale = max_size / max(shape[1:])
        shape[1:] = [max(1, round(v * scale)) for v in shape[1:]]
    ones = torch.ones((1, *shape), dtype=torch.float64)
    for t in range(1, rounds + 1):
        with torch.no_grad():
            for n, m in layers.items():
                m.weight.copy_(originals[n] * masks[n])
        work.zero_grad(set_to_none=True)
        total = work(ones).sum()
        if not torch.isfinite(total):
            raise EdgepruneError("SynFlow's signal overflowed even in float64 on this model",
                                 "use density_source=snip, erk or uniform")
        total.backward()
        scores = {}
        for n, m in layers.items():
            grad = m.weight.grad if m.weight.grad is not None else torch.zeros_like(m.weight)
            scores[n] = (m.weight.detach() * grad).abs()
        masks = _keep_top(scores, density ** (t / rounds), masks)
    return _fractions(masks)


def layer_densities(model: nn.Module, source: str, density: float, *, example_input: torch.Tensor,
                    batch: tuple[torch.Tensor, torch.Tensor] | None = None,
                    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                    synflow_rounds: int = 100, synflow_max_size: int | None = None) -> dict[str, float]:
    """Per-layer densities of ``model`` (at initialisation) from ``source`` at global weight density ``density``."""
    if source == "synflow":
        return synflow_densities(model, density, example_input, synflow_rounds, synflow_max_size)
    if source == "snip":
        if batch is None:
            raise EdgepruneError("density_source 'snip' needs one labelled calibration batch",
                                 "give calibration data, or use density_source=synflow (data-free)")
        return snip_densities(model, density, batch, loss_fn or nn.functional.cross_entropy)
    if source == "uniform":
        return uniform_densities(model, density)
    if source == "erk":
        return erk_densities(model, density)
    raise EdgepruneError(f"unknown density source '{source}'", f"use one of {', '.join(PAI_SOURCES)}")
