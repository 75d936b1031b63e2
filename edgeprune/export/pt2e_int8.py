"""What full int8 through PT2E needs beyond litert-torch's own quantizer (torch 2.13, litert-torch 0.10).

Two faults made concatenation-heavy nets (DenseNet) and residual nets lose int8 parity:

* **Unannotated concatenations, adds, muls and average pools.** litert-torch finds these ops through
  ``get_source_partitions``, which reads the ``source_fn_stack`` node metadata. ``torch.export`` in torch 2.13 no
  longer records it, so those annotators match nothing: a ``cat`` got no observer at all (the converter's
  "Missing quantization parameter on the output"), and the converter then gave the concatenation and all its
  inputs the scale of the *first* input. In a DenseNet that input is a ReLU output (range ``[0, a]``), so the
  negative half of every new feature map was clipped to zero: a systematic error, not rounding noise.
  :func:`annotate_source_less_ops` annotates them by their aten targets instead: one observer shared by every
  input of a ``cat`` and its output (so the range covers all of them, and each input that has its own scale is
  requantized into it), own input observers and an output observer for ``add`` / ``mul`` (on the ReLU when one
  follows), and the input scale kept through average pooling.
* **Batch norms that no convolution precedes** (pre-activation BN after a concatenation) stayed as float
  SUB/MUL/ADD between a DEQUANTIZE and a QUANTIZE: the file was not fully integer. :func:`batchnorm_to_depthwise`
  rewrites each into the equal depthwise 1x1 convolution, which quantizes per channel like any other conv.

Two more showed with real weights and in MobileNetV3:

* **ReLU6 observed before its clamp.** litert-torch fuses only ``relu`` into the convolution before it; a
  ``hardtanh`` merely shared the convolution's output observer, i.e. its pre-clamp range. With ImageNet weights
  that range is tens wide, so EfficientNet-Lite's 0..6 activations got a few int8 steps (logits cosine 0.79).
  The clamp now carries the output observer itself and the convolution (or add / mul) before it has none.
* **hardsigmoid lowered in float.** The converter spells it as an add and a mul between a DEQUANTIZE and a
  QUANTIZE; :func:`hardsigmoid_to_clamp` writes it as ``hardtanh(x + 3, 0, 6) / 6`` first, each step integer.
"""

from __future__ import annotations

from typing import Any

CONV_TARGETS = ("conv1d.default", "conv2d.default", "convolution.default")
_RELU = ("relu.default", "relu_.default")
_RELU6 = ("hardtanh.default", "hardtanh_.default")


def _aten(node: Any, *names: str) -> bool:
    import torch

    return node.op == "call_function" and any(node.target == _op(torch, n) for n in names)


def _op(torch: Any, name: str) -> Any:
    packet, overload = name.split(".")
    return getattr(getattr(torch.ops.aten, packet, None), overload, None)


def batchnorm_to_depthwise(gm: Any) -> int:
    """Rewrite the 4-D inference batch norms not fed by a convolution into depthwise 1x1 convs; return how many.

    A batch norm right after a convolution is left alone (PT2E folds it into that convolution).
    """
    import torch

    count = 0
    for node in list(gm.graph.nodes):
        if not _aten(node, "batch_norm.default", "_native_batch_norm_legit_no_training.default"):
            continue
        src = node.args[0]
        if hasattr(src, "op") and _aten(src, *CONV_TARGETS) and len(src.users) == 1:
            continue
        if node.target == torch.ops.aten.batch_norm.default and bool(node.args[5]):
            continue  # training-mode batch norm: nothing to fold
        weight, bias, mean, var = (_tensor(gm, a) for a in node.args[1:5])
        if mean is None or var is None or src.meta.get("val") is None or src.meta["val"].dim() != 4:
            continue
        eps = float(node.args[7] if node.target == torch.ops.aten.batch_norm.default else node.args[6])
        scale = (weight if weight is not None else torch.ones_like(var)) / torch.sqrt(var + eps)
        shift = (bias if bias is not None else torch.zeros_like(mean)) - mean * scale
        channels = scale.numel()
        w_name, b_name = f"_bn_dw_weight_{count}", f"_bn_dw_bias_{count}"
        gm.register_parameter(w_name, torch.nn.Parameter(scale.detach().reshape(channels, 1, 1, 1).clone()))
        gm.register_parameter(b_name, torch.nn.Parameter(shift.detach().clone()))
        with gm.graph.inserting_before(node):
            w_node, b_node = gm.graph.get_attr(w_name), gm.graph.get_attr(b_name)
            conv = gm.graph.call_function(
                torch.ops.aten.conv2d.default, (src, w_node, b_node, [1, 1], [0, 0], [1, 1], channels)
            )
        conv.meta = {k: v for k, v in node.meta.items() if k in ("nn_module_stack", "stack_trace", "val")}
        if isinstance(conv.meta.get("val"), (tuple, list)):
            conv.meta["val"] = conv.meta["val"][0]
        if node.target == torch.ops.aten.batch_norm.default:
            node.replace_all_uses_with(conv)
        else:  # the legit variant returns (out, mean, rstd): only item 0 is ever read in inference graphs
            for user in list(node.users):
                user.replace_all_uses_with(conv)
                gm.graph.erase_node(user)
        gm.graph.erase_node(node)
        count += 1
    if count:
        gm.graph.eliminate_dead_code()
        gm.recompile()
    return count


def fold_conv_batchnorm(gm: Any) -> int:
    """Fold each inference batch norm that follows a 2-D convolution (its only reader) into that convolution.

    For quantization-aware training on an inference graph: the folded weights are what int8 will hold, so the
    fake quantization trains exactly them. Returns how many batch norms were folded.
    """
    import torch

    count = 0
    for node in list(gm.graph.nodes):
        if not _aten(node, "batch_norm.default") or bool(node.args[5]):
            continue
        conv = node.args[0]
        if not (hasattr(conv, "op") and _aten(conv, "conv2d.default") and len(conv.users) == 1):
            continue
        weight, bias, mean, var = (_tensor(gm, a) for a in node.args[1:5])
        w_old = _tensor(gm, conv.args[1])
        b_old = _tensor(gm, conv.args[2]) if len(conv.args) > 2 else None
        if mean is None or var is None or w_old is None or (len(conv.args) > 2 and conv.args[2] is not None
                                                           and b_old is None):  # fmt: skip
            continue
        scale = (weight if weight is not None else torch.ones_like(var)) / torch.sqrt(var + float(node.args[7]))
        shift = (bias if bias is not None else torch.zeros_like(mean)) - mean * scale
        b_new = (b_old if b_old is not None else torch.zeros_like(mean)) * scale + shift
        w_name, b_name = f"_folded_conv_weight_{count}", f"_folded_conv_bias_{count}"
        gm.register_parameter(w_name, torch.nn.Parameter((w_old * scale.reshape(-1, 1, 1, 1)).detach().clone()))
        gm.register_parameter(b_name, torch.nn.Parameter(b_new.detach().clone()))
        args = list(conv.args) + [None, [1, 1], [0, 0], [1, 1], 1][len(conv.args) - 2 :]
        with gm.graph.inserting_before(node):
            args[1], args[2] = gm.graph.get_attr(w_name), gm.graph.get_attr(b_name)
            new = gm.graph.call_function(torch.ops.aten.conv2d.default, tuple(args))
        new.meta = dict(conv.meta)
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
        gm.graph.erase_node(conv)
        count += 1
    if count:
        gm.graph.eliminate_dead_code()
        gm.recompile()
    return count


def graph_attribute(gm: Any, target: str) -> Any:
    """What a get_attr ``target`` (a dotted path: parameter, buffer or plain attribute) names in ``gm``, or None."""
    obj = gm
    for part in str(target).split("."):
        obj = getattr(obj, part, None)
    return obj


def _tensor(gm: Any, arg: Any) -> Any:
    """The constant a get_attr node points at, as float (None for None / anything else)."""
    raw = _tensor_raw(gm, arg)
    return None if raw is None else raw.detach().float()


def _tensor_raw(gm: Any, arg: Any) -> Any:
    """The constant a get_attr node points at, unconverted (None for None / anything else)."""
    if getattr(arg, "op", None) != "get_attr":
        return None
    obj = graph_attribute(gm, arg.target)
    return obj if hasattr(obj, "dtype") else None


def hardsigmoid_to_clamp(gm: Any) -> int:
    """Rewrite each ``hardsigmoid(x)`` as ``hardtanh(x + 3, 0, 6) * (1/6)``; return how many.

    The converter lowers a hardsigmoid to an add and a mul computed in float between a DEQUANTIZE and a QUANTIZE
    (MobileNetV3's squeeze-excitation gates); spelled out, each step is an ordinary quantized op.
    """
    import torch

    aten = torch.ops.aten
    count = 0
    for node in list(gm.graph.nodes):
        if not _aten(node, "hardsigmoid.default", "hardsigmoid_.default"):
            continue
        with gm.graph.inserting_before(node):
            shifted = gm.graph.call_function(aten.add.Tensor, (node.args[0], 3.0))
            clamped = gm.graph.call_function(aten.hardtanh.default, (shifted, 0.0, 6.0))
            scaled = gm.graph.call_function(aten.mul.Tensor, (clamped, 1.0 / 6.0))
        for new in (shifted, clamped, scaled):
            new.meta = {k: v for k, v in node.meta.items() if k in ("nn_module_stack", "stack_trace", "val")}
        node.replace_all_uses_with(scaled)
        gm.graph.erase_node(node)
        count += 1
    if count:
        gm.recompile()
    return count


def annotate_source_less_ops(gm: Any, config: Any, filter_fn: Any = None) -> None:
    """Annotate cat / add / mul / avg-pool / hardswish / silu nodes the source-partition annotators missed.

    ReLU is left to litert-torch (fused into the conv before it). ReLU6 (hardtanh) after a convolution or an
    add / mul gets the output observer itself, so its scale covers the clamped range only.
    """
    from litert_torch.quantize.pt2e_quantizer_utils import (
        _is_annotated,
        get_input_act_qspec,
        get_output_act_qspec,
    )
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation, SharedQuantizationSpec

    if config is None or config.input_activation is None:
        return
    in_spec, out_spec = get_input_act_qspec(config), get_output_act_qspec(config)

    def annotate(node: Any, inputs: dict[Any, Any], output: Any) -> None:
        node.meta["quantization_annotation"] = QuantizationAnnotation(
            input_qspec_map=inputs, output_qspec=output, _annotated=True
        )

    def float_tensor(arg: Any) -> bool:
        if getattr(arg, "op", None) == "get_attr":  # a scalar operand litert-torch turned into a constant
            const = _tensor_raw(gm, arg)
            return const is not None and const.dtype.is_floating_point
        val = getattr(arg, "meta", {}).get("val") if hasattr(arg, "op") else None
        return val is not None and hasattr(val, "dtype") and val.dtype.is_floating_point

    for node in list(gm.graph.nodes):
        if node.op != "call_function" or _is_annotated([node]) or (filter_fn and not filter_fn(node)):
            continue
        if _aten(node, "cat.default", "concat.default"):
            tensors = [a for a in node.args[0] if float_tensor(a)]
            if tensors and len(tensors) == len(node.args[0]):
                shared = SharedQuantizationSpec(node)  # one scale for every input and the output
                annotate(node, {a: shared for a in tensors}, out_spec)
        elif _aten(node, "add.Tensor", "add_.Tensor", "mul.Tensor", "mul_.Tensor"):
            tensors = [a for a in node.args[:2] if float_tensor(a)]
            if not tensors:
                continue
            relu = next(iter(node.users)) if len(node.users) == 1 else None
            fuse = relu is not None and _aten(relu, *_RELU, *_RELU6) and not _is_annotated([relu])
            fuse = fuse and not (filter_fn and not filter_fn(relu))
            annotate(node, dict.fromkeys(tensors, in_spec), None if fuse else out_spec)
            if fuse:
                annotate(relu, {}, out_spec)
        elif _aten(node, "avg_pool2d.default", "adaptive_avg_pool2d.default", "mean.dim"):
            src = node.args[0]
            if float_tensor(src):
                annotate(node, {src: in_spec}, SharedQuantizationSpec((src, node)))
        elif _aten(node, "hardswish.default", "hardswish_.default", "hardsigmoid.default", "hardsigmoid_.default",
                   "silu.default", "silu_.default"):  # fmt: skip
            src = node.args[0]
            if float_tensor(src):
                annotate(node, {src: in_spec}, out_spec)
        elif _aten(node, *_RELU6):
            _observe_after_clamp(node, out_spec, annotate)


def _observe_after_clamp(clamp: Any, out_spec: Any, annotate: Any) -> None:
    """Move the output observer of a convolution from before a ReLU6 (hardtanh) that alone reads it to after it.

    litert-torch fuses only ``relu`` into a convolution; a ``hardtanh`` would otherwise inherit the convolution's
    pre-clamp range (tens wide with trained weights), leaving the 0..6 output a handful of int8 steps.
    """
    src = clamp.args[0]
    note = getattr(src, "meta", {}).get("quantization_annotation") if hasattr(src, "op") else None
    if note is None or note.output_qspec is None or len(src.users) != 1 or not _aten(src, *CONV_TARGETS):
        return
    note.output_qspec = None
    annotate(clamp, {}, out_spec)


def int8_quantizer(skip_filter: Any = None, qat: bool = False) -> Any:
    """litert-torch's PT2E quantizer (per-channel symmetric weights, int8 activations) with the annotations above.

    ``skip_filter(node) -> bool`` (True = quantize the node) leaves chosen nodes in float (the repair ladder);
    ``qat`` uses fake-quantize modules for quantization-aware training.
    """
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config

    class CompleteInt8Quantizer(PT2EQuantizer):  # type: ignore[misc]
        # the conv-bn QAT patterns fail to build under torch 2.13; QAT graphs have their batch norms folded first
        STATIC_QAT_ONLY_OPS: list[str] = []

        def transform_for_annotation(self, model: Any) -> Any:
            hardsigmoid_to_clamp(model)
            return super().transform_for_annotation(model)

        def _annotate_all_static_patterns(self, model: Any, config: Any, filter_fn: Any = None) -> Any:
            model = super()._annotate_all_static_patterns(model, config, filter_fn)
            annotate_source_less_ops(model, config, filter_fn)
            return model

        def _annotate_for_static_quantization_config(self, model: Any) -> Any:
            if skip_filter is None:
                return super()._annotate_for_static_quantization_config(model)
            return self._annotate_all_static_patterns(model, self.global_config, skip_filter)

    return CompleteInt8Quantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_qat=qat))
