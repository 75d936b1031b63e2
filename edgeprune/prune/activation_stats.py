"""Streaming per-channel statistics of conv layers over many calibration batches (for beta-rank).

For a Conv2d with output y (N, C_out, H_o, W_o) and input x (N, C_in, H, W) this keeps, in float64:

- per output channel and output position: Σy and Σy² over samples (the raw conv output: before BN, with bias);
- per input-channel group and output position: Σx and Σx² over samples × the (C_in/groups)·k_h·k_w elements of
  the receptive field, and the element count. They come from convolving the channel-summed x and x² with an
  all-ones kernel using the conv's own stride, padding and dilation, so padded zeros count as elements exactly
  as in an ``unfold`` of the input. A dense conv has one group; a depthwise conv's channel c sees input channel
  c only, so its spread is taken per channel.

Standard deviations are population ones (ddof = 0): sqrt(max(E[v²] − E[v]², 0)).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F

from edgeprune.errors import EdgepruneError

CHUNK_ELEMENTS = 1 << 24


class ConvStats:
    """Streaming sums for one Conv2d; feed it with :meth:`update` (input, output) per forward."""

    def __init__(self, conv: nn.Conv2d) -> None:
        self.conv = conv
        self.samples = 0
        self.patch_size = (conv.in_channels // conv.groups) * conv.kernel_size[0] * conv.kernel_size[1]
        # [Σx, Σx², Σy, Σy²] once a batch was seen
        self.sums: list[torch.Tensor] | None = None

    def _padding(self) -> tuple[int, int, int, int]:
        """The conv's padding as explicit (left, right, top, bottom) amounts."""
        conv = self.conv
        if isinstance(conv.padding, str):
            if conv.padding == "valid":
                return (0, 0, 0, 0)
            # "same": total d·(k−1) per side pair, the odd one extra on the right/bottom (as torch pads)
            (th, tw) = (d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size, strict=True))
            return (tw // 2, tw - tw // 2, th // 2, th - th // 2)
        ph, pw = conv.padding
        return (pw, pw, ph, ph)

    def _patch_sums(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        conv = self.conv
        pad = self._padding()
        if any(pad):
            x = F.pad(x, pad, mode="constant" if conv.padding_mode == "zeros" else conv.padding_mode)
        n, c, h, w = x.shape
        g = conv.groups

        def window_sum(t: torch.Tensor) -> torch.Tensor:
            # groups folded into the batch, then a box sum over each receptive field
            per_group = t.reshape(n * g, 1, c // g, h, w).sum(2)
            if conv.dilation == (1, 1):
                summed = F.avg_pool2d(per_group, conv.kernel_size, conv.stride, 0, False, True, divisor_override=1)
            else:
                ones = torch.ones(1, 1, *conv.kernel_size, dtype=t.dtype, device=t.device)
                summed = F.conv2d(per_group, ones, None, conv.stride, 0, conv.dilation)
            return summed.reshape(n, g, *summed.shape[2:]).sum(0)

        return window_sum(x), window_sum(x * x)

    @torch.no_grad()
    def update(self, x: torch.Tensor, y: torch.Tensor) -> None:
        # float64 copies of a few samples at a time: large feature maps stay within ~128 MB per copy
        step = max(1, CHUNK_ELEMENTS // max(x[0].numel(), y[0].numel()))
        for i in range(0, x.shape[0], step):
            self._add(x[i : i + step].detach().double(), y[i : i + step].detach().double())

    def _add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        sx, sx2 = self._patch_sums(x)
        sy, sy2 = y.sum(0), (y * y).sum(0)
        if self.sums is None:
            self.sums = [sx, sx2, sy, sy2]
        elif sy.shape != self.sums[2].shape:
            raise EdgepruneError(
                f"calibration batches give different feature-map sizes ({tuple(sy.shape)} vs "
                f"{tuple(self.sums[2].shape)})", "give calibration images of one size (the model's input size)")
        else:
            for total, new in zip(self.sums, (sx, sx2, sy, sy2), strict=True):
                total += new
        self.samples += x.shape[0]

    @staticmethod
    def _std(total: torch.Tensor, total_sq: torch.Tensor, count: int) -> torch.Tensor:
        mean = total / count
        return (total_sq / count - mean * mean).clamp_min(0.0).sqrt()

    def _sums(self) -> list[torch.Tensor]:
        if self.sums is None:
            raise RuntimeError("no batch was recorded for this conv")
        return self.sums

    def sigma_in(self) -> torch.Tensor:
        """(groups, H_o, W_o): spread of the receptive field over samples and patch elements."""
        sx, sx2, _, _ = self._sums()
        return self._std(sx, sx2, self.samples * self.patch_size)

    def sigma_out(self) -> torch.Tensor:
        """(C_out, H_o, W_o): spread of each output over samples."""
        _, _, sy, sy2 = self._sums()
        return self._std(sy, sy2, self.samples)


@contextmanager
def recording(convs: Iterable[nn.Conv2d]) -> Iterator[dict[nn.Conv2d, ConvStats]]:
    """Hook ``convs`` while the block runs; yields conv -> ConvStats. Hooks are removed on exit."""
    stats: dict[nn.Conv2d, ConvStats] = {}
    handles = []
    for conv in convs:
        stats[conv] = ConvStats(conv)
        handles.append(conv.register_forward_hook(lambda m, inp, out: stats[m].update(inp[0], out)))
    try:
        yield stats
    finally:
        for h in handles:
            h.remove()


def collect_conv_stats(model: nn.Module, convs: Iterable[nn.Conv2d],
                       batches: Iterable[torch.Tensor]) -> dict[nn.Conv2d, ConvStats]:
    """Run every batch through ``model`` (eval mode, no grad) and stream the statistics of ``convs``."""
    was_training = model.training
    device = next(model.parameters()).device
    model.eval()
    try:
        with recording(convs) as stats, torch.no_grad():
            for x in batches:
                model(x.to(device))
    finally:
        model.train(was_training)
    return stats
