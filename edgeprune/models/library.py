"""Networks from other libraries (MONAI, torchvision) brought to the zoo convention without rewriting them.

The wrapper moves the library net's final ``nn.Linear`` to ``classifier`` (the last module, so pruning
protects it and export finds it) and turns in-place activations off (the zoo never mutates inputs).
"""

from __future__ import annotations

import torch
from torch import nn

from edgeprune.errors import EdgepruneError


class LibraryNet(nn.Module):
    """``net`` with its last ``nn.Linear`` lifted out to ``classifier``: forward is classifier(net(x))."""

    def __init__(self, net: nn.Module, source: str) -> None:
        super().__init__()
        linears = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise EdgepruneError(f"{source} has no final Linear layer", "use a classification network")
        name, head = linears[-1]
        parent_name, _, attr = name.rpartition(".")
        setattr(net.get_submodule(parent_name) if parent_name else net, attr, nn.Identity())
        for m in net.modules():
            if getattr(m, "inplace", False):
                m.inplace = False  # type: ignore[assignment]
        self.source = source
        self.net = net
        self.classifier = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.net(x), 1))
