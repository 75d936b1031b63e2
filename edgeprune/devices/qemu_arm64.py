"""``qemu-arm64``: the model on real arm64 (NEON) XNNPACK kernels under qemu-user, for parity and op support.

This is Linux arm64, not Android, and emulated: every timing is ~300-400x slower than a phone and means
nothing. Measurements therefore carry ``timing_meaningful=False`` (never shown as latency), no memory
numbers, and runs are capped (``max_runs`` option, default 5). What it is for:

* op support: the artifact loads, allocates and runs on the aarch64 build of ai-edge-litert;
* numerical parity: :func:`parity` runs the same inputs through the host (x86) runtime and the arm64 one and
  compares them with each other and, when given, with PyTorch's outputs.

``benchmark`` (what ``profile --device qemu-arm64`` and ``build --device ...,qemu-arm64`` call) runs the
parity check on every artifact too, on ``parity_n`` inputs (a build passes its first test images through
``BenchSpec.parity_inputs``; a lone file gets deterministic random inputs), and records it in each
Measurement's ``parity`` field, so the tables and reports show what this lane measured.

Set up the lane once with ``edgeprune device setup qemu-arm64`` (:mod:`edgeprune.devices.qemu_setup`).
Spec options: ``cache`` (directory), ``max_runs``, ``timeout`` (s), ``cpu`` (qemu CPU model, default
neoverse-n1, see qemu_setup.DEFAULT_CPU), ``parity_n`` (inputs of the parity check, default 8; 0 skips it).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.devices.base import BenchSpec, Device, check_cpu_bench_request, register_device, split_options
from edgeprune.devices.bench_result import (
    BENCH_SCRIPT,
    measurement_from_bench,
    parse_bench_result,
    stderr_tail,
)
from edgeprune.devices.qemu_setup import DEFAULT_CPU, QemuEnv, require_env
from edgeprune.errors import EdgepruneError
from edgeprune.schemas import DeviceFingerprint, Measurement, ParityStats

NOTE = ("emulated arm64 (qemu-user): timings and memory are not meaningful; reports op support and parity "
        "with the x86 runtime (max-abs, top-1 agreement) instead")

# Runs the model on each input row and saves float32 outputs (int8/uint8 tensors (de)quantized with the
# tensor's own scale/zero point). Executed by both the host python and the guest python, so both sides run
# exactly the same code path.
PARITY_SCRIPT = r"""
import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter
model, inputs, outputs, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
it = Interpreter(model_path=model, num_threads=threads)
it.allocate_tensors()
src, dst = it.get_input_details()[0], it.get_output_details()[0]
x = np.load(inputs)
rows = []
for k in range(x.shape[0]):
    sample = x[k:k + 1]
    dt = np.dtype(src["dtype"])
    if dt.kind in "iu" and sample.dtype.kind == "f":
        scale, zero = src["quantization"]
        info = np.iinfo(dt)
        sample = np.clip(np.round(sample / scale + zero), info.min, info.max)
    it.set_tensor(src["index"], sample.astype(dt).reshape(src["shape"]))
    it.invoke()
    y = it.get_tensor(dst["index"])
    if y.dtype.kind in "iu":
        scale, zero = dst["quantization"]
        y = (y.astype(np.float32) - zero) * scale
    rows.append(np.asarray(y, dtype=np.float32).reshape(-1))
np.save(outputs, np.stack(rows))
print("in", np.dtype(src["dtype"]).name, "out", np.dtype(dst["dtype"]).name, "scale", dst["quantization"][0])
"""


def _compare(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return {"max_abs": float(diff.max()), "mean_abs": float(diff.mean()),
            "top1_agreement": float(np.mean(a.argmax(axis=1) == b.argmax(axis=1))),
            "exact_fraction": float(np.mean(a == b))}  # fmt: skip


def _run_parity(cmd: list[str], env: dict[str, str] | None, where: str, timeout: float) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise EdgepruneError(
            f"the {where} parity run did not finish within {timeout:g} s", "use fewer inputs"
        ) from None
    if proc.returncode != 0:
        raise EdgepruneError(f"the model failed on {where} (exit code {proc.returncode}): {stderr_tail(proc.stderr)}",
                             "the arm64 runtime may not support one of the model's ops; check the message")  # fmt: skip
    return proc.stdout.strip()


def parity(model_path: str | Path, inputs: np.ndarray, torch_outputs: np.ndarray | None = None,
           cache: Path | None = None, threads: int = 1, timeout_s: float = 900.0,
           cpu: str = DEFAULT_CPU) -> dict[str, Any]:  # fmt: skip
    """Run ``inputs`` (N rows in the model's input layout) on x86 and on emulated arm64; compare the outputs.

    Returns ``{"n", "input_dtype", "output_dtype", "output_scale" (None for float outputs), "arm64_vs_x86":
    {max_abs, mean_abs, top1_agreement, exact_fraction}, "x86_vs_torch": …, "arm64_vs_torch": …}`` (the torch
    entries only with ``torch_outputs``, N logit rows). Quantized outputs are dequantized before comparing.
    """
    env = require_env(cache)
    x = np.asarray(inputs)
    if x.ndim < 2 or x.shape[0] < 1:
        raise EdgepruneError(f"parity needs a batch of inputs, got shape {x.shape}", "pass an array shaped (N, ...)")
    with tempfile.TemporaryDirectory(prefix="edgeprune-parity-") as tmp:
        t = Path(tmp)
        np.save(t / "inputs.npy", x)
        args = [str(Path(model_path).resolve()), str(t / "inputs.npy")]
        host_info = _run_parity([sys.executable, "-c", PARITY_SCRIPT, *args, str(t / "x86.npy"), str(threads)],
                                None, "x86 host", timeout_s)  # fmt: skip
        _run_parity(env.command("-c", PARITY_SCRIPT, *args, str(t / "arm64.npy"), str(threads), cpu=cpu), env.env(),
                    "emulated arm64", timeout_s)  # fmt: skip
        x86, arm = np.load(t / "x86.npy"), np.load(t / "arm64.npy")
    words = host_info.split()
    out: dict[str, Any] = {"n": int(x.shape[0]), "input_dtype": words[1], "output_dtype": words[3],
                           "output_scale": float(words[5]) or None,
                           "arm64_vs_x86": _compare(arm, x86), "arm64_runtime": env.info.get("ai_edge_litert"),
                           "qemu_cpu": cpu}  # fmt: skip
    if torch_outputs is not None:
        ref = np.asarray(torch_outputs, dtype=np.float32).reshape(x86.shape[0], -1)
        out["x86_vs_torch"], out["arm64_vs_torch"] = _compare(x86, ref), _compare(arm, ref)
    return out


PARITY_SEED = 0


def random_inputs(input_details: list[dict[str, Any]], n: int, seed: int = PARITY_SEED) -> np.ndarray:
    """``n`` standard-normal float32 rows shaped like the model's first input (batch dimension replaced by n).

    Float rows also serve quantized-input models: the parity script quantizes them with the input's own scale.
    """
    shape = [max(int(d), 1) for d in input_details[0]["shape"]]
    return np.random.default_rng(seed).standard_normal((n, *shape[1:])).astype(np.float32)


def parity_stats(result: dict[str, Any], label: str = "") -> ParityStats:
    """The arm64-vs-x86 part of a :func:`parity` result as the Measurement field (``label``: what the inputs were)."""
    return ParityStats(inputs=label or f"{result['n']} random normal inputs (seed {PARITY_SEED})", n=result["n"],
                       **result["arm64_vs_x86"])  # fmt: skip


@register_device
class QemuArm64Device(Device):
    kind = "qemu-arm64"
    can_time = False
    timing_note = NOTE

    def __init__(self, cache: Path | None = None, max_runs: int = 5, timeout_s: float = 1800.0,
                 cpu: str = DEFAULT_CPU, parity_n: int = 8) -> None:  # fmt: skip
        self.cache, self.max_runs, self.timeout_s, self.cpu = cache, max(1, max_runs), timeout_s, cpu
        self.parity_n = max(0, parity_n)

    @classmethod
    def from_spec(cls, arg: str | None) -> QemuArm64Device:
        main, opts = split_options(arg)
        unknown = set(opts) - {"cache", "max_runs", "timeout", "cpu", "parity_n"}
        if main or unknown:
            raise EdgepruneError(f"bad qemu-arm64 spec '{arg}'", "use qemu-arm64 or qemu-arm64?max_runs=3&cache=DIR")
        try:
            numbers = int(opts.get("max_runs", 5)), float(opts.get("timeout", 1800)), int(opts.get("parity_n", 8))
        except ValueError:
            raise EdgepruneError(f"bad qemu-arm64 spec '{arg}': max_runs, timeout and parity_n are numbers",
                                 "use e.g. qemu-arm64?max_runs=3&parity_n=8") from None  # fmt: skip
        return cls(Path(opts["cache"]) if "cache" in opts else None, numbers[0], numbers[1],
                   opts.get("cpu", DEFAULT_CPU), numbers[2])  # fmt: skip

    def env(self) -> QemuEnv:
        return require_env(self.cache)

    def fingerprint(self) -> DeviceFingerprint:
        env = self.env()
        qemu_id = " ".join(env.info.get("qemu", "qemu-aarch64").split()[:1]
                           + re.findall(r"version (\S+)", env.info.get("qemu", "")))  # fmt: skip
        return DeviceFingerprint(
            kind=self.kind, id=qemu_id, model=f"emulated aarch64 (qemu -cpu {self.cpu})",
            abi="aarch64", os=f"Linux arm64 userland (Debian {env.info.get('suite', '')}) under qemu-user",
            emulated=True, python=env.info.get("python_version", ""),
            guest_ai_edge_litert=env.info.get("ai_edge_litert"),
        )  # fmt: skip

    def run_one(self, env: QemuEnv, model_path: Path, threads: int, warmup: int, runs: int,
                xnnpack: bool) -> dict[str, Any]:  # fmt: skip
        cmd = env.command("-P", str(BENCH_SCRIPT), "--model", str(model_path.resolve()), "--threads", str(threads),
                          "--warmup", str(warmup), "--runs", str(runs), *([] if xnnpack else ["--no-xnnpack"]),
                          cpu=self.cpu)  # fmt: skip
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env.env(), timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            raise EdgepruneError(f"the emulated arm64 run of {model_path.name} took over {self.timeout_s:g} s",
                                 "use a smaller model or qemu-arm64?timeout=SECONDS") from None  # fmt: skip
        result = parse_bench_result(proc.stdout, proc.stderr) if proc.returncode == 0 else None
        if result is None:
            raise EdgepruneError(f"{model_path.name} failed on emulated arm64 (exit code {proc.returncode}): "
                                 f"{stderr_tail(proc.stderr)}",
                                 "the aarch64 runtime may not support an op of this model; "
                                 "check the message")  # fmt: skip
        return result

    def benchmark(self, model_path: Path, spec: BenchSpec, artifact_name: str,
                  artifact_sha256: str) -> list[Measurement]:  # fmt: skip
        model_path = check_cpu_bench_request(model_path, spec, "on qemu-arm64")
        env, device = self.env(), self.fingerprint()
        runs, warmup = min(spec.runs, self.max_runs), min(spec.warmup, 1)
        out, checked = [], None
        for threads in spec.threads:
            r = self.run_one(env, model_path, threads, warmup, runs, spec.use_xnnpack)
            if checked is None and self.parity_n:  # once per artifact: the same numbers hold for every config
                given = spec.parity_inputs is not None and len(spec.parity_inputs) > 0
                x = (np.asarray(spec.parity_inputs, dtype=np.float32)[: self.parity_n] if given
                     else random_inputs(r["inputs"], self.parity_n))  # fmt: skip
                label = f"{len(x)} {spec.parity_inputs_label or 'given inputs'}" if given else ""
                checked = parity_stats(parity(model_path, x, cache=self.cache, timeout_s=self.timeout_s, cpu=self.cpu),
                                       label)  # fmt: skip
            m = measurement_from_bench(r, device, threads, artifact_name, artifact_sha256, emulated=True,
                                       note=NOTE, op_support=True, requested_runs=spec.runs)
            out.append(m.model_copy(update={"parity": checked}))
        return out
