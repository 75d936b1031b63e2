"""Core ML (.mlpackage) sessions: the real model on macOS, a simulation of its weights elsewhere.

``MLModel.predict`` exists only on macOS. On Linux a session (1) reads the package structurally (op types,
compression ops, weight storage, size; ``self.info``) and (2) runs a *simulation*: the package's weights are
decompressed (the pass behind ``coremltools.optimize.coreml.decompress_weights``) and loaded, in program
order, into a BN-folded (``torch.fx.experimental.optimization.fuse``) copy of the PyTorch model the artifact
came from, which then runs in fp32. That measures the weight-compression error exactly; Core ML's fp16
activations on the device are not simulated.

The simulation needs that PyTorch model. Pass it as ``CoreMLSession(path, reference=model)``, or make it
findable for ``open_session`` with ``reference_models({artifact_path: model})`` /
``set_reference_model_resolver(fn)``. ``session.verification_kind`` says which kind of check ran.
"""

from __future__ import annotations

import contextlib
import copy
import platform
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from edgeprune.errors import EdgepruneError
from edgeprune.runtimes.base import RUNTIMES, Session

MACOS_PREDICT = "macos-predict"
SIMULATED = "linux-structural+simulated-weights"

ReferenceResolver = Callable[[Path], Any]  # artifact path -> torch.nn.Module (or None if unknown)
_resolver: ReferenceResolver | None = None


def set_reference_model_resolver(fn: ReferenceResolver | None) -> ReferenceResolver | None:
    """Install the function that finds the PyTorch model of an artifact; returns the previous one."""
    global _resolver
    previous, _resolver = _resolver, fn
    return previous


@contextlib.contextmanager
def reference_models(models: Mapping[str | Path, Any] | ReferenceResolver) -> Iterator[None]:
    """Within the block, ``open_session`` finds each artifact's PyTorch model in ``models`` (path -> model)."""
    if callable(models):
        fn = models
    else:
        table = {Path(k).resolve(): v for k, v in models.items()}

        def fn(path: Path) -> Any:
            return table.get(Path(path).resolve())

    previous = set_reference_model_resolver(fn)
    try:
        yield
    finally:
        set_reference_model_resolver(previous)


def decompressed_program(path: Path, public_api: bool = False) -> Any:
    """The package's MIL program with every constexpr_* weight op replaced by its decompressed constant.

    By default the decompression pass of ``coremltools.optimize.coreml.decompress_weights`` is applied to the
    program read from disk directly, which skips the full re-conversion that the public function performs
    (4x faster here). ``public_api=True`` (or a coremltools without that pass) uses the public function.
    """
    from edgeprune.artifacts.coreml import import_coremltools, load_program, quiet

    ct, cto = import_coremltools()
    if not public_api:
        try:
            from coremltools.optimize.coreml._quantization_passes import WeightDecompressor
        except ImportError:  # pragma: no cover - the pass moved in another coremltools release
            public_api = True
    if not public_api:
        program = load_program(path)
        with quiet():
            WeightDecompressor(op_selector=lambda op: True).apply(program)
        return program
    with quiet():
        dense = cto.decompress_weights(ct.models.MLModel(str(path), skip_model_load=True))
    if dense._mil_program is not None:  # set by the conversion inside decompress_weights
        return dense._mil_program
    import tempfile  # pragma: no cover - a coremltools that drops the program: round-trip through disk

    with tempfile.TemporaryDirectory() as tmp:
        dense.save(f"{tmp}/dense.mlpackage")
        return load_program(Path(tmp) / "dense.mlpackage")


def decompressed_layers(
    path: Path, public_api: bool = False
) -> list[tuple[str, str, np.ndarray, np.ndarray | None]]:
    """(op type, op name, weight, bias) of every conv/linear op, in program order, with weights decompressed."""
    from edgeprune.artifacts.coreml import WEIGHT_OPS, all_ops

    program = decompressed_program(path, public_api)
    layers = []
    for op in all_ops(program.functions["main"]):
        if op.op_type not in WEIGHT_OPS:
            continue
        weight, bias = op.inputs.get("weight"), op.inputs.get("bias")
        if weight is None or weight.val is None:
            raise EdgepruneError(
                f"Core ML op '{op.name}' computes its weight at run time",
                "the simulated check supports constant weights only",
            )
        b = None if bias is None or bias.val is None else np.asarray(bias.val, dtype=np.float32)
        layers.append((op.op_type, op.name, np.asarray(weight.val, dtype=np.float32), b))
    return layers


def simulated_model(reference: Any, path: Path) -> tuple[Any, list[float]]:
    """BN-folded copy of ``reference`` carrying the package's decompressed weights; also the per-layer
    relative weight change (compression error, or a mapping error if it is large)."""
    import torch
    from torch import nn
    from torch.fx.experimental.optimization import fuse

    try:
        folded = fuse(copy.deepcopy(reference).eval(), inplace=True)
    except Exception as exc:  # symbolic tracing failed: data-dependent Python in forward()
        raise EdgepruneError(
            f"cannot fold BatchNorm for the simulated Core ML check: {type(exc).__name__}: {str(exc)[:200]}",
            "verify this artifact on macOS (real prediction) or use a torch.fx-traceable model",
        ) from exc
    kinds = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear)
    modules = [
        folded.get_submodule(n.target)
        for n in folded.graph.nodes
        if n.op == "call_module" and isinstance(folded.get_submodule(n.target), kinds)
    ]
    layers = decompressed_layers(path)
    if len(modules) != len(layers):
        raise EdgepruneError(
            f"{path.name} has {len(layers)} conv/linear ops but the PyTorch model runs {len(modules)}",
            "pass the model this artifact was exported from",
        )
    errors = []
    with torch.no_grad():
        for module, (op_type, name, w, b) in zip(modules, layers, strict=True):
            if tuple(module.weight.shape) != w.shape:
                raise EdgepruneError(
                    f"Core ML {op_type} '{name}' has weight shape {w.shape}, PyTorch {tuple(module.weight.shape)}",
                    "pass the model this artifact was exported from",
                )
            ref = module.weight.detach().clone()
            module.weight.copy_(torch.from_numpy(w))
            if b is not None and module.bias is None:
                module.bias = nn.Parameter(torch.zeros(w.shape[0]))
            if module.bias is not None:
                module.bias.copy_(torch.from_numpy(b) if b is not None else torch.zeros_like(module.bias))
            errors.append(float((module.weight - ref).norm() / ref.norm().clamp_min(1e-12)))
    if max(errors, default=0.0) > 0.5:
        worst = int(np.argmax(errors))
        raise EdgepruneError(
            f"Core ML weights do not line up with the PyTorch model (layer {worst} '{layers[worst][1]}' "
            f"differs by {errors[worst]:.0%})",
            "pass the model this artifact was exported from",
        )
    return folded.eval(), errors


@RUNTIMES.register("coreml")
class CoreMLSession(Session):
    """A .mlpackage: real prediction on macOS; on Linux, structural read-back plus simulated weights."""

    format = "coreml"
    suffixes = (".mlpackage",)
    runtime = "coremltools"
    # coremltools is checked in __init__ by import_coremltools (a faster, quiet import than open_session's)
    requires: ClassVar[dict[str, str]] = {}

    def __init__(
        self, path: str | Path, threads: int = 1, reference: Any = None, simulate: bool | None = None
    ) -> None:
        super().__init__(path, threads)
        from edgeprune.artifacts.coreml import import_coremltools, inspect_mlpackage

        if not self.path.is_dir():
            raise EdgepruneError(f"{self.path.name} is not a .mlpackage directory", "pass the package folder")
        import_coremltools()
        # the structural check: raises if the spec or the MIL program cannot be read back
        self.info = inspect_mlpackage(self.path)
        self.inputs, self.outputs = self.info.inputs, self.info.outputs
        self.layout = self.inputs[0].layout
        if simulate is None:
            simulate = platform.system() != "Darwin"
        self.weight_errors: list[float] = []
        if not simulate:
            ct, _ = import_coremltools()
            self.model = ct.models.MLModel(str(self.path))
            self.verification_kind = MACOS_PREDICT
            return
        if reference is None and _resolver is not None:
            reference = _resolver(self.path)
        if reference is None:
            raise EdgepruneError(
                f"Core ML prediction needs macOS; checking {self.path.name} here needs the PyTorch model it came from",
                "pass CoreMLSession(path, reference=model) or wrap the call in "
                "edgeprune.runtimes.coreml.reference_models({path: model})",
            )
        self.model, self.weight_errors = simulated_model(reference, self.path)
        self.verification_kind = SIMULATED

    def run(self, x: np.ndarray) -> np.ndarray:
        if self.verification_kind != SIMULATED:
            return super().run(x)
        import torch

        x = self.check_batch(x)
        self.to_model_layout(x, self.layout)  # checks the image size against the package
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)  # honour the session's thread count, then restore
        try:
            with torch.no_grad():
                return self.model(torch.from_numpy(x)).numpy().astype(np.float32)
        finally:
            torch.set_num_threads(previous)

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        name_in, name_out = self.inputs[0].name, self.outputs[0].name
        rows = [self.model.predict({name_in: x[i : i + 1]})[name_out] for i in range(len(x))]
        return np.concatenate([np.asarray(r, dtype=np.float32).reshape(1, -1) for r in rows], axis=0)
