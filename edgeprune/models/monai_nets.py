"""MONAI's 2-D classification networks: the zoo's DenseNet-121, ResNet-18 and ResNet-50, and ``monai:<Name>``.

No MONAI weights are ever downloaded: ``pretrained`` stays off. ResNets get the ImageNet stem (7x7 stride-2
conv, then max-pool; MONAI's own default keeps stride 1) and 1x1-conv projection shortcuts without bias.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from edgeprune.errors import EdgepruneError
from edgeprune.models.library import LibraryNet

PREFIX = "monai:"
_HINTS = ("input_size",)


def _nets() -> Any:
    try:
        import monai.networks.nets as nets
    except Exception as exc:
        raise EdgepruneError(f"MONAI is not usable here ({type(exc).__name__}: {exc})",
                             "install it with: pip install -c constraints.txt monai") from None
    return nets


def _tolerate_tiny_maps(model: nn.Module) -> None:
    """Let 2x2 average pools round up, so a DenseNet fed 28 px still ends with a 1x1 map (same result on even
    sizes)."""
    for m in model.modules():
        if isinstance(m, nn.AvgPool2d) and m.kernel_size in (2, (2, 2)) and m.padding in (0, (0, 0)):
            m.ceil_mode = True


def densenet121(num_classes: int, in_channels: int = 3, pretrained: bool = False,
                input_size: int | None = None) -> LibraryNet:
    """MONAI DenseNet121 (2-D, batch norm, growth 32, blocks 6/12/24/16): the CheXNet architecture."""
    del pretrained, input_size
    net = _nets().DenseNet121(spatial_dims=2, in_channels=in_channels, out_channels=num_classes, pretrained=False)
    _tolerate_tiny_maps(net)
    return LibraryNet(net, "monai DenseNet121")


def _resnet(depth: int, num_classes: int, in_channels: int) -> LibraryNet:
    factory = getattr(_nets(), f"resnet{depth}")
    net = factory(pretrained=False, spatial_dims=2, n_input_channels=in_channels, num_classes=num_classes,
                  conv1_t_size=7, conv1_t_stride=2, shortcut_type="B", bias_downsample=False)
    return LibraryNet(net, f"monai resnet{depth}")


def resnet18(num_classes: int, in_channels: int = 3, pretrained: bool = False,
             input_size: int | None = None) -> LibraryNet:
    """MONAI ResNet-18 (basic blocks 2/2/2/2) with the ImageNet stem."""
    del pretrained, input_size
    return _resnet(18, num_classes, in_channels)


def resnet50(num_classes: int, in_channels: int = 3, pretrained: bool = False,
             input_size: int | None = None) -> LibraryNet:
    """MONAI ResNet-50 (bottleneck blocks 3/4/6/3) with the ImageNet stem."""
    del pretrained, input_size
    return _resnet(50, num_classes, in_channels)


def _known(nets: Any) -> list[str]:
    return sorted(n for n in ("DenseNet121", "DenseNet169", "DenseNet201", "DenseNet264", "SEResNet50",
                              "resnet10", "resnet18", "resnet34", "resnet50", "EfficientNetBN",
                              "efficientnet-b0 ... efficientnet-b7")
                  if n.startswith("efficientnet-") or hasattr(nets, n))


def monai_model(name: str, num_classes: int, in_channels: int = 3, pretrained: bool = False,
                **kw: Any) -> LibraryNet:
    """``monai:<Name>``: a class or factory of ``monai.networks.nets`` built 2-D with random weights.

    ``monai:efficientnet-b0`` .. ``-b7`` build ``EfficientNetBN`` of that size. Extra keywords go to MONAI.
    """
    nets = _nets()
    for hint in _HINTS:
        kw.pop(hint, None)
    if pretrained:
        raise EdgepruneError("pretrained MONAI weights would need a download",
                             "save a state dict once and pass it with weights=")
    if name.startswith("efficientnet-"):
        kw["model_name"], name = name, "EfficientNetBN"
    factory = getattr(nets, name, None)
    if not callable(factory) or name.startswith("_"):
        raise EdgepruneError(f"monai.networks.nets has no network '{name}'",
                             f"use e.g. {', '.join(PREFIX + n for n in _known(nets))}")
    if name == "EfficientNetBN":
        kw.setdefault("model_name", "efficientnet-b0")
    names = set(inspect.signature(factory).parameters)
    args: dict[str, Any] = {"spatial_dims": 2}
    if "model_name" in names:  # EfficientNetBN
        args.update(in_channels=in_channels, num_classes=num_classes)
    elif "n_input_channels" in names or name.startswith("resnet"):  # ResNet and the resnetNN(**kwargs) factories
        args.update(n_input_channels=in_channels, num_classes=num_classes)
    else:  # DenseNet*, SENet and the SEResNet* factories, ...
        args.update(in_channels=in_channels, **{"out_channels" if "out_channels" in names else "num_classes":
                                                num_classes})
    if "pretrained" in names:
        args["pretrained"] = False
    try:
        net = factory(**args, **kw)
    except Exception as exc:
        raise EdgepruneError(f"monai {name} could not be built ({type(exc).__name__}: {exc})",
                             "check the network name and its options") from None
    if hasattr(net, "set_swish"):
        net.set_swish(memory_efficient=False)  # the memory-efficient swish is a custom autograd op export rejects
    _tolerate_tiny_maps(net)
    return LibraryNet(net, f"monai {name}")
