"""Models from outside the zoo: a user's ``file.py:factory``, torchvision names, in-memory modules (``python:``)
and state-dict checkpoints."""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from edgeprune.errors import EdgepruneError
from edgeprune.fsutil import sha256_file

# Keyword arguments that only inform a factory; dropped silently when a user factory does not take them.
HINT_KWARGS = frozenset({"input_size"})
_SPEC_FORM = "write the model as a registry name, path/to/file.py:factory, torchvision:name or monai:Name"
MEMORY_PREFIX = "python:"  # model.name of an nn.Module handed over in Python: 'python:<class name>@<state hash>'
_IN_MEMORY: dict[str, tuple[nn.Module, str]] = {}


def state_sha256(model: nn.Module) -> str:
    """Fingerprint of a module: its class, its structure and every parameter and buffer."""
    h = hashlib.sha256(f"{type(model).__module__}.{type(model).__qualname__}\n{model}".encode())
    for key, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(f"{key}{t.dtype}{tuple(tensor.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def register_module(model: nn.Module) -> str:
    """Keep a snapshot of ``model`` (weights included) as a factory; returns its ``python:`` spec."""
    if not isinstance(model, nn.Module):
        raise EdgepruneError(f"the model is a {type(model).__name__}, not a torch.nn.Module",
                             "pass an nn.Module, a zoo name or path/to/file.py:factory")
    sha = state_sha256(model)
    spec = f"{MEMORY_PREFIX}{type(model).__name__}@{sha[:12]}"
    _IN_MEMORY[spec] = (copy.deepcopy(model).cpu(), sha)
    return spec


def memory_entry(spec: str) -> tuple[nn.Module, str]:
    """(snapshot, state sha256) of a registered in-memory model; another process cannot see it."""
    found = _IN_MEMORY.get(spec)
    if found is None:
        raise EdgepruneError(
            f"model '{spec}' was an in-memory nn.Module of another Python process and cannot be rebuilt here",
            "run edgeprune.build(model, ...) again in Python, or give the model as path/to/file.py:factory")
    return found


def memory_model(spec: str, num_classes: int, in_channels: int, pretrained: bool = False, **kw: Any) -> nn.Module:
    """A fresh copy of a registered module (its weights are the starting point; epochs=0 keeps them)."""
    snapshot = check_memory_options(spec, pretrained, kw)
    model = copy.deepcopy(snapshot)
    check_io(model, spec, num_classes, in_channels)
    return model


def check_memory_options(spec: str, pretrained: bool, kw: dict[str, Any]) -> nn.Module:
    """The snapshot of a registered module, after checking no zoo-only option was asked for."""
    snapshot, _ = memory_entry(spec)
    if pretrained:
        raise EdgepruneError(f"pretrained does not apply to the in-memory model {spec}",
                             "an in-memory model starts from its own weights: drop pretrained")
    rejected = [k for k in kw if k not in HINT_KWARGS]
    if rejected:
        raise EdgepruneError(f"the in-memory model {spec} takes no option(s) {', '.join(rejected)}",
                             "configure the module before passing it (e.g. drop width_mult)")
    return snapshot


def split_user_spec(spec: str) -> tuple[Path, str] | None:
    """``"dir/net.py:build"`` -> (Path("dir/net.py"), "build"); None when ``spec`` is not a file spec."""
    file_part, sep, factory = spec.rpartition(":")
    if sep and file_part.endswith(".py"):
        if not factory.isidentifier():
            raise EdgepruneError(f"model spec '{spec}' has no valid factory name after ':'", _SPEC_FORM)
        return Path(file_part).expanduser(), factory
    if spec.endswith(".py"):
        raise EdgepruneError(
            f"model spec '{spec}' names a file but no factory", f"{_SPEC_FORM}, e.g. {spec}:build_model"
        )
    return None


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise EdgepruneError(f"user model file {path} does not exist", "check the path in the model spec")
    name = f"edgeprune_user_model_{sha256_file(path)[:16]}"
    if name in sys.modules:
        return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise EdgepruneError(f"cannot import {path} as a Python module", "give a .py file")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.resolve().parent))  # let the file import its sibling modules
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise EdgepruneError(
            f"importing {path} failed: {type(exc).__name__}: {exc}", "fix that file"
        ) from exc
    finally:
        sys.path.remove(str(path.resolve().parent))
    return module


def _call_factory(
    factory: Callable[..., Any],
    where: str,
    num_classes: int,
    in_channels: int,
    pretrained: bool,
    kw: dict[str, Any],
) -> Any:
    """Pass only the arguments the factory declares; a factory without any gets called bare."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # some builtins/extension callables have no signature
        try:
            return factory(num_classes=num_classes, in_channels=in_channels, **kw)
        except TypeError:
            return factory()
    any_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}

    def accepts(arg: str) -> bool:
        return any_kw or arg in named

    args: dict[str, Any] = {
        k: v for k, v in (("num_classes", num_classes), ("in_channels", in_channels)) if accepts(k)
    }
    if pretrained:
        if not accepts("pretrained"):
            raise EdgepruneError(
                f"{where} takes no 'pretrained' argument", "pass a checkpoint with weights= instead"
            )
        args["pretrained"] = True
    kw = {k: v for k, v in kw.items() if k not in HINT_KWARGS or accepts(k)}
    rejected = [k for k in kw if not accepts(k)]
    if rejected:
        raise EdgepruneError(
            f"{where} does not accept argument(s) {', '.join(rejected)}",
            f"its parameters are: {', '.join(params) or 'none'}",
        )
    return factory(**args, **kw)


def check_io(model: nn.Module, where: str, num_classes: int, in_channels: int) -> None:
    """Catch factories that ignored the requested input channels or class count."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if convs and convs[0].in_channels != in_channels:
        raise EdgepruneError(
            f"{where} built a model for {convs[0].in_channels} input channels, the data has {in_channels}",
            "give the factory an in_channels parameter and use it for the first conv",
        )
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if linears and linears[-1].out_features != num_classes:
        raise EdgepruneError(
            f"{where} built a model with {linears[-1].out_features} outputs, the data has {num_classes} classes",
            "give the factory a num_classes parameter and use it for the last Linear layer",
        )


def build_user_model(
    path: Path, factory_name: str, num_classes: int, in_channels: int = 3, pretrained: bool = False, **kw: Any
) -> nn.Module:
    """Import ``path`` and call ``factory_name`` in it; the result must be an nn.Module."""
    factory = find_factory(path, factory_name)
    where = f"{path}:{factory_name}"
    try:
        model = _call_factory(factory, where, num_classes, in_channels, pretrained, kw)
    except EdgepruneError:
        raise
    except Exception as exc:
        raise EdgepruneError(
            f"{where} raised {type(exc).__name__}: {exc}", "fix the factory function"
        ) from exc
    if not isinstance(model, nn.Module):
        raise EdgepruneError(
            f"{where} returned {type(model).__name__}, not a torch.nn.Module", "return the model"
        )
    check_io(model, where, num_classes, in_channels)
    return model


def find_factory(path: Path, factory_name: str) -> Callable[..., Any]:
    """Import ``path`` (once per content) and return its callable ``factory_name``."""
    module = _import_file(path)
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        found = sorted(
            n
            for n, v in vars(module).items()
            if callable(v) and not n.startswith("_") and getattr(v, "__module__", None) == module.__name__
        )
        raise EdgepruneError(
            f"{path} has no function '{factory_name}'",
            f"functions defined there: {', '.join(found)}"
            if found
            else f"define def {factory_name}(num_classes, in_channels): ... returning an nn.Module",
        )
    return factory


def torchvision_model(
    name: str, num_classes: int, in_channels: int = 3, pretrained: bool = False, **kw: Any
) -> nn.Module:
    """A torchvision architecture with random weights (weights are never downloaded)."""
    for hint in HINT_KWARGS:
        kw.pop(hint, None)
    from edgeprune.models._torchvision import torchvision_models

    try:
        tvm = torchvision_models()
    except Exception as exc:  # missing, or the CUDA-only wheel that fails to import with CPU torch
        raise EdgepruneError(
            f"torchvision is not usable here ({type(exc).__name__}: {exc})",
            "use a built-in model or a file spec path/to/model.py:factory",
        ) from None
    if pretrained:
        raise EdgepruneError(
            "pretrained torchvision weights would need a download",
            "save a state dict once and pass it with weights=",
        )
    if name not in tvm.list_models():
        raise EdgepruneError(f"unknown torchvision model '{name}'", f"known: {', '.join(tvm.list_models())}")
    model = tvm.get_model(name, weights=None, num_classes=num_classes, **kw)
    if in_channels != 3:
        _replace_first_conv(model, in_channels)
    return model


def _replace_first_conv(model: nn.Module, in_channels: int) -> None:
    name, conv = next((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d))
    if conv.groups != 1:
        raise EdgepruneError(
            f"cannot change the input channels of grouped conv '{name}'", "use 3-channel images"
        )
    new = nn.Conv2d(
        in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,  # type: ignore[arg-type]
        conv.dilation,
        bias=conv.bias is not None,
    )
    nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
    parent_name, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, attr, new)


def _extract_state(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = dict(obj)
    elif isinstance(obj, Mapping) and isinstance(obj.get("state_dict", obj.get("model")), Mapping):
        return _extract_state(obj.get("state_dict", obj.get("model")), path)
    else:
        raise EdgepruneError(
            f"{path} holds no state dict (found {type(obj).__name__})",
            "save it with torch.save(model.state_dict(), path)",
        )
    if all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def weights_file(weights: str | Path) -> Path:
    """The checkpoint path, which must exist."""
    path = Path(weights).expanduser()
    if not path.is_file():
        raise EdgepruneError(f"weights file {path} does not exist", "check the weights path")
    return path


def load_weights(model: nn.Module, weights: str | Path) -> nn.Module:
    """Load a state-dict checkpoint strictly (weights_only); mismatches name the first bad key."""
    path = weights_file(weights)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EdgepruneError(
            f"{path} cannot be read as a plain checkpoint ({first})",
            "save only tensors: torch.save(model.state_dict(), path)",
        ) from None
    state = _extract_state(obj, path)
    own = model.state_dict()
    for key, tensor in state.items():
        if key not in own:
            raise EdgepruneError(
                f"weights {path} have a tensor '{key}' the model lacks ({len(state)} in file, "
                f"{len(own)} in model)",
                "build the architecture the checkpoint was saved from",
            )
        if tensor.shape != own[key].shape:
            raise EdgepruneError(
                f"weights {path}: '{key}' has shape {tuple(tensor.shape)}, the model expects "
                f"{tuple(own[key].shape)}",
                _shape_fix(model, key, tuple(tensor.shape), tuple(own[key].shape)),
            )
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise EdgepruneError(
            f"weights {path} lack the model tensor '{missing[0]}' ({len(missing)} missing)",
            "build the architecture the checkpoint was saved from",
        )
    state.update({k: v for k, v in own.items() if k not in state})  # only num_batches_tracked counters
    model.load_state_dict(state, strict=True)
    return model


def _shape_fix(model: nn.Module, key: str, shape: tuple[int, ...], expected: tuple[int, ...]) -> str:
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if linears and key.rpartition(".")[0] == linears[-1] and shape[0] != expected[0]:
        return f"the checkpoint has {shape[0]} classes: build the model with num_classes={shape[0]}"
    if convs and key == f"{convs[0]}.weight" and len(shape) == 4 and shape[1] != expected[1]:
        return f"the checkpoint takes {shape[1]} input channels: use in_channels={shape[1]}"
    return "build the model with the same architecture and options (e.g. width_mult) as the checkpoint"
