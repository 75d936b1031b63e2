"""The synthetic 3-class image task shared by the export tests (small, learnable, deterministic)."""

from __future__ import annotations

import torch


def stripes(n: int, gen: torch.Generator, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """3 classes: horizontal stripes, vertical stripes, a centred blob; random colour, contrast and noise."""
    y = torch.randint(0, 3, (n,), generator=gen)
    r = torch.arange(size, dtype=torch.float32)
    h = ((r // 2) % 2).view(size, 1).expand(size, size)
    blob = (((r - size / 2).view(-1, 1) ** 2 + (r - size / 2).view(1, -1) ** 2) < (size / 4) ** 2).float()
    patterns = torch.stack([h, h.t(), blob])[y]  # (n,H,W)
    colour = torch.rand(n, 3, 1, 1, generator=gen) * 0.8 + 0.2
    amp = torch.rand(n, 1, 1, 1, generator=gen) * 0.7 + 0.3
    x = 0.5 + amp * colour * (patterns[:, None] - 0.5) + 0.15 * torch.randn(n, 3, size, size, generator=gen)
    return ((x.clamp(0, 1) - 0.5) / 0.5).float(), y
