"""MobileNetV2 (inverted residuals, ReLU6) plus the small building blocks shared by the zoo."""

from __future__ import annotations

import math

import torch
from torch import nn

from edgeprune.errors import EdgepruneError


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a scaled channel count to a multiple of ``divisor`` without dropping more than 10%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal (fan-out) convs, unit BN, small-normal linear layers; biases at zero.

    The fan-out counts one group only: torch's own kaiming_normal_ treats a depthwise 3x3 as having
    fan-out C*9, which shrinks every depthwise layer ~4x and leaves a fresh MobileNet's eval-mode
    outputs near 1e-10 (useless for parity checks on untrained models).
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.out_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


def check_width(width_mult: float) -> float:
    """Reject width multipliers that would give empty layers."""
    if not width_mult > 0:
        raise EdgepruneError(f"width_mult must be > 0, got {width_mult}", "use e.g. width_mult=0.5 or 1.0")
    return float(width_mult)


def small_input_flag(small_input: bool | None, input_size: int | None) -> bool:
    """Explicit ``small_input`` wins; otherwise inputs of at most 64 px count as small."""
    if small_input is not None:
        return bool(small_input)
    return input_size is not None and input_size <= 64


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> optional ReLU6; children are named 0, 1, 2."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int = 3,
        stride: int = 1,
        groups: int = 1,
        act: bool = True,
        bn_eps: float = 1e-5,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout, eps=bn_eps),
        ]
        if act:
            layers.append(nn.ReLU6())
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """1x1 expand -> kxk depthwise -> 1x1 linear projection; identity add when shapes match."""

    def __init__(
        self, cin: int, cout: int, stride: int, expand_ratio: int, kernel: int = 3, bn_eps: float = 1e-5
    ) -> None:
        super().__init__()
        hidden = cin * expand_ratio
        self.use_residual = stride == 1 and cin == cout
        # No expansion layer when the ratio is 1 (the first block of both MobileNetV2 and EfficientNet).
        self.expand = ConvBNAct(cin, hidden, 1, bn_eps=bn_eps) if expand_ratio != 1 else None
        self.dw = ConvBNAct(hidden, hidden, kernel, stride, groups=hidden, bn_eps=bn_eps)
        self.project = ConvBNAct(hidden, cout, 1, act=False, bn_eps=bn_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x if self.expand is None else self.expand(x)
        out = self.project(self.dw(out))
        return x + out if self.use_residual else out


# (expand ratio t, output channels c, repeats n, first stride s) of the MobileNetV2 paper.
_SETTINGS = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


class MobileNetV2(nn.Module):
    """MobileNetV2; ``small_input`` keeps stride 1 in the stem and the first downsampling stage."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        width_mult: float = 1.0,
        small_input: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        cin = make_divisible(32 * width_mult)
        last = make_divisible(1280 * max(1.0, width_mult))
        self.stem = ConvBNAct(in_channels, cin, 3, 1 if small_input else 2)
        blocks: list[nn.Module] = []
        first_downsample = True
        for t, c, n, s in _SETTINGS:
            cout = make_divisible(c * width_mult)
            if s == 2 and first_downsample:
                first_downsample = False
                s = 1 if small_input else 2
            for i in range(n):
                blocks.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = ConvBNAct(cin, last, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.classifier = nn.Linear(last, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.head(self.blocks(self.stem(x))))
        x = torch.flatten(x, 1)
        if self.dropout is not None:
            x = self.dropout(x)
        return self.classifier(x)


def mobilenetv2(
    num_classes: int,
    in_channels: int = 3,
    pretrained: bool = False,
    width_mult: float = 1.0,
    small_input: bool | None = None,
    input_size: int | None = None,
    dropout: float = 0.0,
) -> MobileNetV2:
    """MobileNetV2; small_input is chosen from input_size (<= 64 px) when not given."""
    del pretrained  # not supported; create_model rejects pretrained=True before calling
    return MobileNetV2(
        num_classes, in_channels, check_width(width_mult), small_input_flag(small_input, input_size), dropout
    )
