"""List the ops of a zoo model's full-int8 .tflite that touch a float activation, with the tensors they touch.

A diagnostic for ``float_ops`` findings (e.g. MobileNetV3-Small's squeeze-excitation hardsigmoid): exports the
untrained model at a small size with 16 random calibration inputs, then prints every op (after the first) that
reads or writes a FLOAT32 tensor, as ``index OP  dtype:name ... -> dtype:name``.

    cd /work/wt-zootable && export PYTHONPATH=$PWD OMP_NUM_THREADS=1
    nice -n 15 /work/main/.venv/bin/python benchmarks/int8_float_ops_trace.py mobilenetv3_small 64
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from zoo_int8 import build  # noqa: E402


def main() -> None:
    from ai_edge_litert import schema_py_generated as schema

    from edgeprune.export.base import EXPORTERS, ExportRequest

    name, size = sys.argv[1], int(sys.argv[2])
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = build(name, size).eval()
    calib = torch.randn(16, 3, size, size)
    with tempfile.TemporaryDirectory() as tmp:
        req = ExportRequest(model=model, example_input=calib[:1], precision="int8", out_dir=Path(tmp), name="int8",
                            calib_inputs=calib, calib_ids=list(range(16)), io_dtype="float32")  # fmt: skip
        data = (Path(tmp) / EXPORTERS.get("tflite:litert-torch")().export(req).file).read_bytes()
    m = schema.Model.GetRootAs(data, 0)
    g = m.Subgraphs(0)
    ops = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}
    dtypes = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}

    def show(t: int) -> str:
        return f"{dtypes[g.Tensors(t).Type()]}:{g.Tensors(t).Name().decode()[-60:]}"

    for i in range(1, g.OperatorsLength()):
        op = g.Operators(i)
        code = m.OperatorCodes(op.OpcodeIndex())
        ins = [show(int(t)) for t in op.InputsAsNumpy() if t >= 0]
        outs = [show(int(t)) for t in op.OutputsAsNumpy() if t >= 0]
        if any(s.startswith("FLOAT32") for s in ins + outs):
            name = ops.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))
            print(i, name, " ".join(ins), "->", " ".join(outs))


if __name__ == "__main__":
    main()
