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
