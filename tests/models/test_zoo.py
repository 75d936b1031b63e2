"""Model zoo: every registered model builds, runs, exports and prunes; user files and checkpoints resolve."""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path

import pytest
import torch
import torch_pruning as tp
from torch import nn

from edgeprune.errors import EdgepruneError
from edgeprune.models import MODELS, ModelEntry, create_model, model_spec_sha256, resolve_model
from edgeprune.models import efficientnet_lite as effnet

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NUM_CLASSES = 5


def _torchvision_ok() -> bool:
    try:
        from edgeprune.models._torchvision import torchvision_models

        torchvision_models()
    except Exception:  # the CUDA-only wheel raises RuntimeError on import with CPU torch
        return False
    return True


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _options(name: str) -> set[str]:
    return set(inspect.signature(MODELS.get(name).factory).parameters)


@pytest.mark.parametrize("name", MODELS.names())
def test_entry_metadata(name: str) -> None:
    entry = MODELS.get(name)
    assert isinstance(entry, ModelEntry) and entry.name == name
    assert entry.test_only == name.startswith("test_")
    assert entry.default_input_size > 0 and entry.description
    assert {"num_classes", "in_channels", "pretrained"} <= _options(name)


@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32)])
@pytest.mark.parametrize("name", MODELS.names())
def test_forward_and_structure(name: str, channels: int, size: int) -> None:
    torch.manual_seed(0)
    model = create_model(name, NUM_CLASSES, in_channels=channels).eval()
    with torch.no_grad():
        out = model(torch.randn(2, channels, size, size))
    assert out.shape == (2, NUM_CLASSES) and torch.isfinite(out).all()
    assert (
        out.std() > 1e-4
    )  # a fresh model must not collapse its signal (parity checks on it would be vacuous)
    assert isinstance(model.classifier, nn.Linear) and model.classifier.out_features == NUM_CLASSES
    assert list(model.modules())[-1] is model.classifier
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.in_channels == channels
    assert not any(getattr(m, "inplace", False) for m in model.modules())


@pytest.mark.parametrize("name", MODELS.names())
def test_torch_export(name: str) -> None:
    model = create_model(name, NUM_CLASSES).eval()
    x = torch.randn(1, 3, 32, 32)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x))


# Channel shuffles that plain torch-pruning cannot follow; edgeprune's grouping leaves those layers unpruned
# (tests/models/test_zoo_prune_export.py prunes them through the engine, tests/prune/test_unprunable.py).
UNGROUPABLE = {"shufflenetv2"}


@pytest.mark.parametrize("name", [n for n in MODELS.names() if n not in UNGROUPABLE])
def test_depgraph_pruning_keeps_model_runnable(name: str) -> None:
    """Residual streams must be prunable by torch-pruning (no zero-padding shortcuts)."""
    model = create_model(name, NUM_CLASSES, in_channels=1).eval()
    x = torch.randn(1, 1, 28, 28)
    before = _params(model)
    pruner = tp.pruner.MagnitudePruner(
        model,
        x,
        importance=tp.importance.MagnitudeImportance(p=2),
        pruning_ratio=0.5,
        ignored_layers=[model.classifier],
    )
    pruner.step()
    assert _params(model) < 0.6 * before
    assert model(x).shape == (1, NUM_CLASSES)


@pytest.mark.parametrize("name", [n for n in MODELS.names() if "width_mult" in _options(n)])
def test_width_mult_shrinks_model(name: str) -> None:
    assert _params(create_model(name, NUM_CLASSES, width_mult=0.5)) < _params(create_model(name, NUM_CLASSES))
    with pytest.raises(EdgepruneError, match="width_mult"):
        create_model(name, NUM_CLASSES, width_mult=0)


@pytest.mark.parametrize("name", [n for n in MODELS.names() if "small_input" in _options(n)])
def test_small_input_keeps_resolution(name: str) -> None:
    def final_size(**kw: object) -> int:
        model = create_model(name, NUM_CLASSES, **kw).eval()
        sizes: list[int] = []
        model.head.register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1]))
        model(torch.randn(1, 3, 32, 32))
        return sizes[0]

    assert final_size() == 1  # 32x downsampling
    assert final_size(input_size=32) == 4  # 8x downsampling
    assert final_size(input_size=32, small_input=False) == 1


def test_resnet_uses_projection_shortcuts() -> None:
    model = create_model("resnet20", NUM_CLASSES)
    projections = [
        m.shortcut
        for m in model.modules()
        if hasattr(m, "shortcut") and not isinstance(m.shortcut, nn.Identity)
    ]
    assert len(projections) == 2  # entry of stages 2 and 3
    for sc in projections:
        assert (
            isinstance(sc[0], nn.Conv2d) and sc[0].kernel_size == (1, 1) and isinstance(sc[1], nn.BatchNorm2d)
        )


def test_bad_options_and_names() -> None:
    with pytest.raises(EdgepruneError, match="did you mean 'resnet20'"):
        create_model("resnet21", NUM_CLASSES)
    with pytest.raises(EdgepruneError, match="did you mean 'mobilenetv2'"):
        resolve_model("mobilenet_v2", NUM_CLASSES)
    with pytest.raises(EdgepruneError, match="no option 'depth'.*width_mult"):
        create_model("resnet20", NUM_CLASSES, depth=3)
    with pytest.raises(EdgepruneError, match="no pretrained weights.*efficientnet_lite0"):
        create_model("resnet20", NUM_CLASSES, pretrained=True)
    with pytest.raises(EdgepruneError, match="num_classes must be a positive integer"):
        create_model("resnet20", 0)


# ---------------------------------------------------------------- EfficientNet-Lite0 pretrained weights


@pytest.fixture(scope="module")
def lite_source() -> dict[str, torch.Tensor]:
    return effnet.read_pretrained_state()


@pytest.fixture(scope="module")
def lite_imagenet() -> nn.Module:
    """Pretrained with the original 1000-class head (shared: building it takes a moment)."""
    return create_model("efficientnet_lite0", 1000, pretrained=True).eval()


def test_efficientnet_pretrained_loads_every_backbone_tensor(
    lite_source: dict[str, torch.Tensor], lite_imagenet: nn.Module
) -> None:
    model = lite_imagenet
    state = model.state_dict()
    assert len(state) == len(lite_source)
    for key, tensor in lite_source.items():
        assert torch.equal(state[effnet.map_checkpoint_key(key)], tensor), key
    assert torch.equal(model.blocks[3].dw[0].weight, lite_source["_blocks.3._depthwise_conv.weight"])

    small = create_model("efficientnet_lite0", NUM_CLASSES, pretrained=True)
    assert torch.equal(small.head[1].running_var, lite_source["_bn1.running_var"])
    assert small.classifier.weight.shape == (NUM_CLASSES, 1280)


def test_efficientnet_pretrained_is_deterministic_and_not_random(lite_imagenet: nn.Module) -> None:
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        a = lite_imagenet(x)
        b = create_model("efficientnet_lite0", 1000, pretrained=True).eval()(x)
        random_init = create_model("efficientnet_lite0", 1000).eval()(x)
    assert torch.equal(a, b)
    assert not torch.allclose(a, random_init, atol=1e-3)


def test_efficientnet_grey_stem_equals_rgb_on_grey_images(
    lite_source: dict[str, torch.Tensor], lite_imagenet: nn.Module
) -> None:
    grey = create_model("efficientnet_lite0", 1000, in_channels=1, pretrained=True).eval()
    rgb = lite_imagenet
    assert torch.equal(grey.stem[0].weight, lite_source["_conv_stem.weight"].sum(1, keepdim=True))
    x = torch.rand(1, 1, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(grey(x), rgb(x.repeat(1, 3, 1, 1)), atol=1e-4, rtol=1e-4)
    with pytest.raises(EdgepruneError, match="1 or 3 input channels"):
        create_model("efficientnet_lite0", NUM_CLASSES, in_channels=4, pretrained=True)


def test_efficientnet_loader_rejects_incomplete_or_foreign_weights(
    lite_source: dict[str, torch.Tensor],
) -> None:
    model = effnet.EfficientNetLite0(NUM_CLASSES)
    with pytest.raises(EdgepruneError, match="no place"):
        effnet.load_pretrained(model, {**lite_source, "_blocks.0._se_reduce.weight": torch.zeros(1)}, False)
    partial = {k: v for k, v in lite_source.items() if k != "_blocks.7._bn1.running_mean"}
    with pytest.raises(EdgepruneError, match="unset.*blocks.7.dw.1.running_mean"):
        effnet.load_pretrained(model, partial, False)


# ---------------------------------------------------------------- user files and checkpoints

GOOD_FILE = """
from torch import nn

def build(num_classes, in_channels=3):
    return nn.Sequential(nn.Conv2d(in_channels, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, num_classes))

def fixed():
    return build(7, 3)

NOT_A_FUNCTION = 3
"""


@pytest.fixture()
def user_file(tmp_path: Path) -> Path:
    path = tmp_path / "net.py"
    path.write_text(GOOD_FILE)
    return path


def test_user_factory_with_keywords(user_file: Path) -> None:
    model = resolve_model(f"{user_file}:build", 3, in_channels=1, input_size=16)  # a hint build() ignores
    assert model(torch.randn(2, 1, 16, 16)).shape == (2, 3)
    assert model_spec_sha256(f"{user_file}:build") == hashlib.sha256(user_file.read_bytes()).hexdigest()
    assert model_spec_sha256("resnet20") is None


def test_user_factory_without_arguments(user_file: Path) -> None:
    assert resolve_model(f"{user_file}:fixed", 7)(torch.randn(1, 3, 8, 8)).shape == (1, 7)
    with pytest.raises(EdgepruneError, match="7 outputs.*3 classes.*num_classes"):
        resolve_model(f"{user_file}:fixed", 3)
    with pytest.raises(EdgepruneError, match="3 input channels.*has 1"):
        resolve_model(f"{user_file}:fixed", 7, in_channels=1)


def test_user_file_errors(user_file: Path, tmp_path: Path) -> None:
    with pytest.raises(EdgepruneError, match="does not exist"):
        resolve_model(f"{tmp_path / 'missing.py'}:build", 3)
    with pytest.raises(EdgepruneError, match="no function 'make'.*build, fixed"):
        resolve_model(f"{user_file}:make", 3)
    with pytest.raises(EdgepruneError, match="no function 'NOT_A_FUNCTION'"):
        resolve_model(f"{user_file}:NOT_A_FUNCTION", 3)
    with pytest.raises(EdgepruneError, match="names a file but no factory"):
        resolve_model(str(user_file), 3)
    broken = tmp_path / "broken.py"
    broken.write_text("import not_a_real_module_xyz\n")
    with pytest.raises(EdgepruneError, match="importing .*broken.py failed: ModuleNotFoundError"):
        resolve_model(f"{broken}:build", 3)
    with pytest.raises(EdgepruneError, match="does not accept argument.*width_mult"):
        resolve_model(f"{user_file}:build", 3, width_mult=0.5)


def test_weights_round_trip_and_wrappers(user_file: Path, tmp_path: Path) -> None:
    source = resolve_model(f"{user_file}:build", 3)
    for i, payload in enumerate(
        [source.state_dict(), {"state_dict": source.state_dict(), "epoch": 4}, {"model": source.state_dict()}]
    ):
        ckpt = tmp_path / f"w{i}.pt"
        torch.save(payload, ckpt)
        loaded = resolve_model(f"{user_file}:build", 3, weights=ckpt)
        for a, b in zip(source.state_dict().values(), loaded.state_dict().values(), strict=True):
            assert torch.equal(a, b)


def test_weights_errors_name_key_and_fix(tmp_path: Path) -> None:
    ckpt = tmp_path / "ten_classes.pth"
    torch.save(create_model("resnet20", 10).state_dict(), ckpt)
    with pytest.raises(EdgepruneError, match=r"'classifier.weight' has shape \(10, 64\).*num_classes=10"):
        resolve_model("resnet20", NUM_CLASSES, weights=ckpt)
    with pytest.raises(EdgepruneError, match=r"'conv1.weight'.*in_channels=3"):
        resolve_model("resnet20", 10, in_channels=1, weights=ckpt)
    loaded = resolve_model("resnet20", 10, weights=ckpt)
    assert loaded.classifier.out_features == 10

    state = create_model("resnet20", NUM_CLASSES).state_dict()
    del state["layer2.0.shortcut.0.weight"]
    torch.save(state, tmp_path / "partial.pt")
    with pytest.raises(EdgepruneError, match="lack the model tensor 'layer2.0.shortcut.0.weight'"):
        resolve_model("resnet20", NUM_CLASSES, weights=tmp_path / "partial.pt")

    torch.save(create_model("test_tinycnn", NUM_CLASSES), tmp_path / "pickled.pt")  # a whole module
    with pytest.raises(EdgepruneError, match="cannot be read as a plain checkpoint"):
        resolve_model("test_tinycnn", NUM_CLASSES, weights=tmp_path / "pickled.pt")
    with pytest.raises(EdgepruneError, match="does not exist"):
        resolve_model("test_tinycnn", NUM_CLASSES, weights=tmp_path / "nope.pt")


@pytest.mark.skipif(_torchvision_ok(), reason="torchvision imports here")
def test_torchvision_spec_without_torchvision() -> None:
    with pytest.raises(EdgepruneError, match="torchvision is not usable here"):
        resolve_model("torchvision:resnet18", NUM_CLASSES)


@pytest.mark.skipif(not _torchvision_ok(), reason="torchvision is not importable")
def test_torchvision_spec_builds_with_custom_channels() -> None:
    model = resolve_model("torchvision:resnet18", NUM_CLASSES, in_channels=1).eval()  # batch of 1: BN in eval
    assert model(torch.randn(1, 1, 32, 32)).shape == (1, NUM_CLASSES)
