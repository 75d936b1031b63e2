"""Empirical bias correction of a PT2E int8 graph (the AIMET / Nagel et al. 2019 recipe, done on the graph).

Quantizing a layer's weights and inputs shifts the *mean* of its output, per channel, and in deep graphs
(DenseNet's 58 concatenated feature maps, EfficientNet's depthwise stacks) those shifts add up to a systematic
logit offset rather than rounding noise. Each layer's own shift is measurable on the calibration images: in the
converted graph (fake-quantized, run in float), compute every convolution and linear layer twice from the same
upstream activation, once through its quantize -> dequantize pairs and once without them (float input, float
weights), average the difference per output channel and move it into that layer's bias. The bias stays float in
the graph and becomes int32 in the .tflite with a scale derived from input and weight scales only, so the
correction survives conversion.

Only the layer's *local* shift is corrected: the shift a layer inherits from upstream layers is theirs to remove,
and correcting the total at every layer at once would count it twice. A second round measures again after the
first correction moved the activations (``rounds``), which approximates AIMET's layer-by-layer order at the cost
of one calibration pass per round.
"""

from __future__ import annotations

from typing import Any

from edgeprune.export.pt2e_int8 import graph_attribute

_LAYERS = ("conv2d.default", "linear.default")
_QUANTIZE = ("quantize_per_tensor.default", "quantize_per_channel.default", "quantize_per_tensor.tensor")
_DEQUANTIZE = ("dequantize_per_tensor.default", "dequantize_per_channel.default", "dequantize_per_tensor.tensor")


def _is(node: Any, *names: str) -> bool:
    target = getattr(node, "target", None)
    return getattr(node, "op", None) == "call_function" and any(str(target).endswith(n) for n in names)


def _float_source(arg: Any) -> Any:
    """The node a dequantize(quantize(x)) argument was made from (x), or None when ``arg`` is not such a pair."""
    if _is(arg, *_DEQUANTIZE) and _is(arg.args[0], *_QUANTIZE):
        return arg.args[0].args[0]
    return None


def _corrected_layers(gm: Any) -> dict[str, str]:
    """Node name -> bias attribute path, for every conv / linear whose bias is a graph constant."""
    layers = {}
    for node in gm.graph.nodes:
        if _is(node, *_LAYERS) and len(node.args) > 2:
            bias = node.args[2]
            if getattr(bias, "op", None) == "get_attr" and any(_float_source(a) is not None for a in node.args[:2]):
                layers[node.name] = str(bias.target)
    return layers


def local_shifts(gm: Any, names: set[str], calib: Any, chunk: int,
                 applied: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per output channel, the mean of (float layer - quantized layer) on the same upstream activations.

    ``applied``: corrections already added to the biases; the float layer is computed with its original bias.
    """
    import torch
    from torch.fx import Interpreter

    sums: dict[str, Any] = {}
    images = 0
    # the float inputs a layer needs are freed by the interpreter once their quantize node ran: keep them aside
    # until their last layer has used them
    readers: dict[Any, int] = {}
    for node in gm.graph.nodes:
        if node.name in names:
            for arg in node.args:
                if (src := _float_source(arg)) is not None:
                    readers[src] = readers.get(src, 0) + 1

    class _Recorder(Interpreter):
        kept: dict[Any, Any]
        left: dict[Any, int]

        def run_node(self, n: Any) -> Any:
            out = super().run_node(n)
            if n in readers:
                self.kept[n] = out
            if n.name in names:
                args, kwargs = self.fetch_args_kwargs_from_env(n)
                args = tuple(self._float_arg(node, value) for node, value in zip(n.args, args, strict=True))
                if applied and n.name in applied:
                    args = (*args[:2], args[2] - applied[n.name].to(args[2].dtype), *args[3:])
                diff = (n.target(*args, **kwargs) - out).detach().double()
                channel = 1 if diff.dim() > 2 else diff.dim() - 1
                per_channel = diff.transpose(0, channel).reshape(diff.shape[channel], -1).mean(dim=1)
                sums[n.name] = sums.get(n.name, 0) + per_channel * diff.shape[0]
            return out

        def _float_arg(self, node: Any, value: Any) -> Any:
            src = _float_source(node)
            if src is None:
                return value
            self.left[src] -= 1
            return self.kept[src] if self.left[src] else self.kept.pop(src)

    with torch.no_grad():
        for i in range(0, len(calib), chunk):
            batch = calib[i : i + chunk]
            recorder = _Recorder(gm)
            recorder.kept, recorder.left = {}, dict(readers)
            recorder.run(batch)
            images += batch.shape[0]
    return {name: total / images for name, total in sums.items()}


def correct_biases(quantized: Any, calib: Any, chunk: int = 1, rounds: int = 2) -> dict[str, float]:
    """Move each layer's local mean output error (on ``calib``) into its bias, in place, ``rounds`` times.

    Returns the number of corrected layers and the largest absolute per-channel shift measured in the first and
    in the last round (the residual the previous rounds left), so a caller can report what the correction did.
    """
    import torch

    layers = _corrected_layers(quantized)
    if not layers or len(calib) == 0 or rounds <= 0:
        return {"layers": 0, "max_shift_before": 0.0, "max_shift_after": 0.0}
    for path in set(layers.values()):
        _own_copy(quantized, path)  # the graph may share the user's bias Parameter: never change the model
    worst: list[float] = []
    applied: dict[str, Any] = {}
    for _ in range(rounds):
        shifts = local_shifts(quantized, set(layers), calib, chunk, applied)
        worst.append(max((float(d.abs().max()) for d in shifts.values()), default=0.0))
        for name, delta in shifts.items():
            bias = graph_attribute(quantized, layers[name])
            with torch.no_grad():
                bias.add_(delta.to(bias.dtype))
            applied[name] = applied.get(name, 0) + delta
    return {"layers": len(layers), "max_shift_before": worst[0], "max_shift_after": worst[-1]}


def _own_copy(gm: Any, path: str) -> None:
    """Replace the tensor at ``path`` by a copy of itself, so in-place edits stay inside this graph."""
    import torch

    owner_path, _, name = path.rpartition(".")
    owner = graph_attribute(gm, owner_path) if owner_path else gm
    old = getattr(owner, name)
    copy = old.detach().clone()
    if isinstance(old, torch.nn.Parameter):
        setattr(owner, name, torch.nn.Parameter(copy, requires_grad=False))
    elif name in getattr(owner, "_buffers", {}):
        owner.register_buffer(name, copy)
    else:
        setattr(owner, name, copy)
