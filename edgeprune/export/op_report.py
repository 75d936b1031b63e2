"""Op report for a .tflite artifact: what the file contains and what XNNPACK really takes over.

"Pruned but not faster" usually has a visible cause: layout TRANSPOSE ops, QUANTIZE/DEQUANTIZE pairs around
ops that stayed in float, or ops XNNPACK does not take (dynamic-range depthwise convolutions, for example),
which then run on the reference kernels and split the graph into several delegate partitions.

Delegation is read from the LiteRT interpreter itself: after ``allocate_tensors`` with the default XNNPACK
delegate, each partition appears as an extra ``DELEGATE`` node whose inputs and outputs are the partition's
boundary tensors; the original nodes it replaced are recovered by walking back from its outputs to its inputs.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from edgeprune.artifacts.tflite import COMPUTE_OPS, inspect_tflite
from edgeprune.errors import EdgepruneError


def _delegation(path: Path, n_ops: int) -> dict[str, Any]:
    """Original node indices replaced by XNNPACK and the number of partitions (default delegate, 1 thread)."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=str(path), num_threads=1)
        interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as exc:
        return {"error": f"LiteRT could not prepare the model with XNNPACK: {str(exc).splitlines()[0][:200]}"}
    native = interpreter._interpreter  # node-level queries are only on the wrapped C++ interpreter
    names = [native.NodeName(i) for i in range(native.NumNodes())]
    producer: dict[int, int] = {}
    for i in range(min(n_ops, len(names))):
        for t in native.NodeOutputs(i):
            producer[int(t)] = i
    delegated: set[int] = set()
    partitions = 0
    for d in range(n_ops, len(names)):
        if names[d] != "DELEGATE":
            continue
        partitions += 1
        boundary = {int(t) for t in native.NodeInputs(d)}
        todo = [int(t) for t in native.NodeOutputs(d)]
        while todo:
            t = todo.pop()
            node = producer.get(t)
            if t in boundary or node is None or node in delegated:
                continue
            delegated.add(node)
            todo += [int(x) for x in native.NodeInputs(node) if int(x) >= 0]
    left = [names[i] for i in range(min(n_ops, len(names))) if i not in delegated]
    return {"delegated": len(delegated), "partitions": partitions, "not_delegated_ops": dict(Counter(left))}


def float_ops(path: str | Path) -> dict[str, int]:
    """Ops that read or write a float32 activation, by op name; empty = the graph is fully integer.

    The QUANTIZE that reads a float graph input and the DEQUANTIZE that writes a float graph output are the
    file's float I/O edges (``io_dtype=float32``) and are not counted; constants are not activations.
    """
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(Path(path).read_bytes(), 0)
    graph = model.Subgraphs(0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}
    io_in = {int(t) for t in graph.InputsAsNumpy()} if graph.InputsLength() else set()
    io_out = {int(t) for t in graph.OutputsAsNumpy()} if graph.OutputsLength() else set()

    def float_activation(t: int) -> bool:
        if t < 0 or graph.Tensors(t).Type() != schema.TensorType.FLOAT32:
            return False
        buf = model.Buffers(graph.Tensors(t).Buffer())
        return not (buf is not None and (buf.DataLength() or buf.Size()))

    found: Counter[str] = Counter()
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
        ins = [int(t) for t in op.InputsAsNumpy()] if op.InputsLength() else []
        outs = [int(t) for t in op.OutputsAsNumpy()] if op.OutputsLength() else []
        if name == "QUANTIZE" and ins and ins[0] in io_in:
            continue
        if name == "DEQUANTIZE" and outs and set(outs) <= io_out:
            continue
        if any(float_activation(t) for t in ins + outs):
            found[name] += 1
    return dict(found)


def op_report(path: str | Path) -> dict[str, Any]:
    """Op histogram, TRANSPOSE / QUANTIZE / DEQUANTIZE counts, XNNPACK delegated vs not, and plain-text hints."""
    path = Path(path)
    if not path.is_file():
        raise EdgepruneError(f"model file not found: {path}", "check the path or re-run the export stage")
    info = inspect_tflite(path)
    n_ops = sum(info.op_histogram.values())
    report: dict[str, Any] = {
        "file": path.name, "quantization": info.quantization, "ops_total": n_ops,
        "op_histogram": dict(sorted(info.op_histogram.items(), key=lambda kv: (-kv[1], kv[0]))),
        "transpose": info.n_transpose, "quantize": info.n_quantize, "dequantize": info.n_dequantize,
        "delegate": "XNNPACK", "float_ops": float_ops(path),
    }  # fmt: skip
    deleg = _delegation(path, n_ops)
    if "error" in deleg:
        report.update(delegated_nodes=0, not_delegated_nodes=n_ops, delegate_partitions=0,
                      not_delegated_ops=dict(info.op_histogram), delegate_error=deleg["error"])  # fmt: skip
    else:
        report.update(delegated_nodes=deleg["delegated"], not_delegated_nodes=n_ops - deleg["delegated"],
                      delegate_partitions=deleg["partitions"],
                      not_delegated_ops=deleg["not_delegated_ops"])  # fmt: skip
    report["hints"] = _hints(report, info.quantization)
    return report


def _hints(r: dict[str, Any], quantization: str) -> list[str]:
    hints = []
    if r.get("delegate_error"):
        hints.append(f"{r['delegate_error']}: every op runs on the reference kernels")
    elif r["not_delegated_nodes"] and not r["delegated_nodes"]:
        why = " (XNNPACK has no int16-activation kernels)" if quantization == "int16x8" else ""
        hints.append(f"no op runs in XNNPACK{why}: everything uses the slower reference kernels")
    elif r["not_delegated_nodes"]:
        ops = ", ".join(f"{k} x{v}" for k, v in sorted(r["not_delegated_ops"].items()))
        hints.append(
            f"{r['not_delegated_nodes']} of {r['ops_total']} ops run outside XNNPACK ({ops}) and the graph is split "
            f"into {r['delegate_partitions']} delegate partitions; pruning does not speed up those ops much"
        )
    if r["transpose"]:
        hints.append(
            f"{r['transpose']} TRANSPOSE op(s): layout changes; an NHWC export removes the input one"
        )
    qdq = r["quantize"] + r["dequantize"]
    if quantization == "fp16-weights" and r["dequantize"]:
        hints.append(
            "DEQUANTIZE ops expand float16 weights to float32 once at load time: smaller file, same speed"
        )
    elif quantization in ("full-int8", "partial-int8", "int16x8") and qdq:
        compute = sum(v for k, v in r["op_histogram"].items() if k in COMPUTE_OPS)
        hints.append(
            f"{qdq} QUANTIZE/DEQUANTIZE op(s) next to {compute} compute op(s): I/O conversion or ops left in float"
        )
    if quantization in ("full-int8", "partial-int8") and r.get("float_ops"):
        ops = ", ".join(f"{k} x{v}" for k, v in sorted(r["float_ops"].items()))
        hints.append(f"ops that still compute in float32 inside the integer graph: {ops}")
    if quantization == "dynamic-int8" and r["not_delegated_nodes"]:
        hints.append(
            "dynamic-range int8 ops XNNPACK rejects run slower than fp32; prefer full int8 or fp32 here"
        )
    return hints
