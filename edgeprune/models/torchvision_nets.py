"""torchvision's MobileNetV3-Small and ShuffleNetV2 (x1.0), random weights (never downloaded), zoo convention."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from edgeprune.errors import EdgepruneError
from edgeprune.models._torchvision import torchvision_models
from edgeprune.models.library import LibraryNet
from edgeprune.models.mobilenetv2 import init_weights
from edgeprune.models.user import _replace_first_conv


def _tvm() -> Any:
    try:
        return torchvision_models()
    except Exception as exc:
        raise EdgepruneError(f"torchvision is not usable here ({type(exc).__name__}: {exc})",
                             "install it with: pip install --no-deps torchvision==0.28.0") from None


def _wrap(net: nn.Module, in_channels: int, source: str) -> LibraryNet:
    if in_channels != 3:
        _replace_first_conv(net, in_channels)
    init_weights(net)  # torchvision's depthwise init leaves a fresh net's outputs near 1e-10
    return LibraryNet(net, source)


def _settle_bn(net: nn.Module, in_channels: int, size: int = 224) -> None:
    """Set the fresh net's BN running statistics from one fixed noise batch at the native size (momentum 1;
    at small sizes the late layers see 1x1 maps whose batch variance is too small to normalise by).

    Hard-swish and the squeeze-excite gates shrink a fresh MobileNetV3's signal ~1000x in eval mode, which
    would make parity checks on untrained models vacuous; trained or loaded weights replace these statistics.
    """
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.momentum = 1.0
    noise = torch.randn(4, in_channels, size, size, generator=torch.Generator().manual_seed(0))
    net.train()
    with torch.no_grad():
        net(noise)
    for m, momentum in zip(bns, saved, strict=True):
        m.momentum = momentum
        if m.num_batches_tracked is not None:
            m.num_batches_tracked.zero_()


def mobilenetv3_small(num_classes: int, in_channels: int = 3, pretrained: bool = False,
                      input_size: int | None = None, dropout: float = 0.2) -> LibraryNet:
    """torchvision MobileNetV3-Small (hard-swish, squeeze-excite)."""
    del pretrained, input_size
    net = _tvm().mobilenet_v3_small(weights=None, num_classes=num_classes, dropout=dropout)
    model = _wrap(net, in_channels, "torchvision mobilenet_v3_small")
    _settle_bn(model.net, in_channels)
    return model


def shufflenetv2(num_classes: int, in_channels: int = 3, pretrained: bool = False,
                 input_size: int | None = None) -> LibraryNet:
    """torchvision ShuffleNetV2 x1.0 (channel split and shuffle: its block outputs cannot be pruned)."""
    del pretrained, input_size
    net = _tvm().shufflenet_v2_x1_0(weights=None, num_classes=num_classes)
    return _wrap(net, in_channels, "torchvision shufflenet_v2_x1_0")
