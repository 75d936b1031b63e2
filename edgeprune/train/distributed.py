"""Process-group helpers: a no-op outside torchrun, gloo on CPU under it."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def init_if_needed(device: torch.device) -> bool:
    """Start the process group when launched by torchrun; returns True when distributed."""
    if world_size() <= 1:
        return False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def params_in_sync(model: torch.nn.Module) -> bool:
    """True when every rank holds the same weights (always True outside torchrun)."""
    if not (dist.is_available() and dist.is_initialized()):
        return True
    with torch.no_grad():
        checksum = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().view(1)
    gathered = [torch.zeros_like(checksum) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, checksum)
    return all(torch.equal(g, gathered[0]) for g in gathered)
