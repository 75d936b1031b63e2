"""The emulated arm64 lane end to end: setup (cached), op support, parity with x86 and PyTorch, hidden timings.

The first run downloads the Debian arm64 userland and the aarch64 wheels (about 30-110 s, Debian mirror and
PyPI only) into ~/.cache/edgeprune/qemu-arm64 (or $EDGEPRUNE_QEMU_ARM64_CACHE); later runs reuse it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeprune.devices import QemuArm64Device, open_device
from edgeprune.devices.qemu_arm64 import parity
from edgeprune.devices.qemu_setup import (
    QemuEnv,
    default_cache,
    fake_cpuinfo,
    find_env,
    find_tool,
    setup_qemu_arm64,
)
from edgeprune.errors import EdgepruneError
from tests.devices.conftest import export_tiny


@pytest.fixture(scope="session")
def qemu_env() -> QemuEnv:
    missing = [t for t in ("qemu-aarch64-static", "debootstrap", "dpkg-deb") if not find_tool(t)]
    if missing:
        pytest.skip(f"qemu-arm64 lane needs {', '.join(missing)} (apt-get install qemu-user-static debootstrap)")
    env = find_env()
    if env is None:
        if os.geteuid() != 0 and not shutil.which("fakeroot"):
            pytest.skip("qemu-arm64 setup needs root or fakeroot (debootstrap): apt-get install fakeroot")
        env = setup_qemu_arm64(log=lambda msg: None)
    return env


@pytest.fixture(scope="module")
def inputs() -> np.ndarray:
    return np.random.default_rng(3).standard_normal((8, 3, 16, 16)).astype(np.float32)


def _torch_logits(net, x: np.ndarray) -> np.ndarray:  # noqa: ANN001
    import torch

    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


def test_setup_is_cached_and_ready(qemu_env: QemuEnv) -> None:
    assert qemu_env.info["machine"] == "aarch64" and (qemu_env.rootfs / "proc" / "cpuinfo").is_file()
    messages: list[str] = []
    again = setup_qemu_arm64(qemu_env.cache, log=messages.append)
    assert again.cache == qemu_env.cache and messages == [f"qemu-arm64 lane already set up in {qemu_env.cache}"]
    assert "CPU implementer\t: 0x41" in fake_cpuinfo(2) and fake_cpuinfo(2).count("processor") == 2


def test_profile_runs_on_arm64_but_never_shows_timings(qemu_env: QemuEnv, tiny_model: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """`edgeprune profile --device qemu-arm64`: the model runs on arm64, the table hides every emulated number."""
    import importlib

    from rich.console import Console
    from typer.testing import CliRunner

    import edgeprune.pipeline.standalone as standalone
    from edgeprune.cli import app

    seen: list = []
    real = standalone.profile_file
    monkeypatch.setattr(standalone, "profile_file", lambda *a, **k: seen.extend(real(*a, **k)) or seen)
    monkeypatch.setattr(importlib.import_module("edgeprune.cli.profile"), "console", Console(width=250))
    res = CliRunner().invoke(app, ["profile", str(tiny_model), "--device", "qemu-arm64?max_runs=2", "--threads", "1",
                                   "--warmup", "5", "--runs", "50"])  # fmt: skip
    assert res.exit_code == 0, res.output
    row = next(ln for ln in res.output.splitlines() if ln.startswith("│ tiny"))
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    # p50/p90/p99 and init hidden, no emulated RSS or model memory; the lane's parity with x86 shown instead
    assert cells[4:10] == ["n/a", "n/a", "n/a", "n/a", "-", "-"]
    assert float(cells[10]) < 1e-5 and cells[11] == "100.0% of 8"
    assert "not meaningful" in res.output
    assert (
        "vs x86: emulated outputs compared with the x86 ai-edge-litert runtime on 8 random normal inputs" in res.output
    )
    (m,) = seen
    assert m.parity is not None and m.parity.n == 8 and m.parity.top1_agreement == 1.0
    assert cells[10] == f"{m.parity.max_abs:.2e}"
    assert m.model_peak_mb is None and m.baseline_rss_mb is None
    assert m.device.kind == "qemu-arm64" and m.device.abi == "aarch64" and m.device.model_extra["emulated"] is True
    assert m.timing_meaningful is False and m.runs == 2 and m.extra["requested_runs"] == 50
    assert m.peak_rss_mb is None and m.load_delta_mb is None and "not meaningful" in m.extra["note"]
    assert m.init_ms is None and m.first_inference_ms is None and m.extra["emulated_timings_ms"]["init_ms"] > 0
    assert m.device.id.startswith("qemu-aarch64 ") and "neoverse-n1" in m.device.model
    assert m.extra["op_support"] is True and m.extra["outputs_finite"] and m.extra["xnnpack_delegate_created"]
    assert m.extra["outputs"][0]["shape"] == [1, 3]


def test_parity_fp32_and_int8_against_x86_and_pytorch(qemu_env: QemuEnv, tiny_net, tiny_model: Path,  # noqa: ANN001
                                                      inputs: np.ndarray, tmp_path: Path) -> None:  # fmt: skip
    ref = _torch_logits(tiny_net, inputs)
    fp32 = parity(tiny_model, inputs, torch_outputs=ref)
    assert fp32["n"] == 8 and fp32["input_dtype"] == fp32["output_dtype"] == "float32"
    assert fp32["arm64_vs_x86"]["max_abs"] < 1e-5 and fp32["arm64_vs_x86"]["top1_agreement"] == 1.0
    assert fp32["x86_vs_torch"]["max_abs"] < 1e-4 and fp32["arm64_vs_torch"]["top1_agreement"] == 1.0

    int8_model = export_tiny(tiny_net, tmp_path, "int8")
    int8 = parity(int8_model, inputs, torch_outputs=ref)
    assert int8["input_dtype"] == "int8" and int8["output_dtype"] == "int8" and int8["qemu_cpu"] == "neoverse-n1"
    lsb = int8["output_scale"]
    assert lsb is not None and fp32["output_scale"] is None
    # same int8 kernels family on both ISAs: at most one output quantization step apart, same predictions
    assert int8["arm64_vs_x86"]["max_abs"] <= lsb * 1.001 and int8["arm64_vs_x86"]["top1_agreement"] == 1.0
    assert int8["arm64_vs_torch"]["max_abs"] <= 10 * lsb and int8["arm64_vs_torch"]["top1_agreement"] >= 0.75
    print(f"\nparity fp32: {fp32}\nparity int8: {int8}")


def test_unset_lane_and_bad_specs(tmp_path: Path) -> None:
    with pytest.raises(EdgepruneError, match="not set up.*edgeprune device setup qemu-arm64"):
        QemuArm64Device(cache=tmp_path / "empty").fingerprint()
    with pytest.raises(EdgepruneError, match="bad qemu-arm64 spec"):
        open_device("qemu-arm64:extra")
    with pytest.raises(EdgepruneError, match="bad qemu-arm64 spec"):
        open_device("qemu-arm64?colour=red")
    assert default_cache().name == "qemu-arm64"


def test_parity_reaches_report_json_and_build_table(qemu_env: QemuEnv, tiny_net, tmp_path: Path,  # noqa: ANN001
                                                    inputs: np.ndarray,
                                                    capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """`build --device host,qemu-arm64`: each artifact row of report.json carries the qemu lane's parity (on the
    inputs the build passes: its test images) and the host lane's model memory; the console table and
    report.html show both."""
    from rich.console import Console

    import edgeprune.cli._common as common
    from edgeprune.devices import BenchSpec
    from edgeprune.fsutil import sha256_file
    from edgeprune.report.schema import ArtifactRow
    from edgeprune.rundir.artifacts import artifact_row
    from edgeprune.rundir.outcomes import ExportedArtifact

    model = export_tiny(tiny_net, tmp_path, "int8")
    sha = sha256_file(model)
    spec = BenchSpec(threads=[1], warmup=1, runs=2, parity_inputs=inputs, parity_inputs_label="test images")
    meas = [m.model_dump(mode="json") for dev in ("host", "qemu-arm64?max_runs=1&parity_n=4")
            for m in open_device(dev).benchmark(model, spec, "pruned_tflite_int8", sha)]  # fmt: skip
    art = ExportedArtifact(name="pruned_tflite_int8", file="artifacts/x.tflite", format="tflite", precision="int8",
                           sha256=sha, size_bytes=model.stat().st_size)  # fmt: skip
    row = ArtifactRow.model_validate(artifact_row(art, None, meas)).model_dump()
    par = row["emulated_parity"]
    assert par["device"] == "qemu-arm64" and par["n"] == 4 and par["reference"] == "x86 ai-edge-litert"
    assert par["inputs"] == "4 test images" and par["top1_agreement"] == 1.0  # parity_n=4 of the 8 given
    assert 0 <= par["max_abs"] < 0.05  # int8 outputs: at most about one quantization step apart
    assert row["model_peak_mb"] is not None and 0 < row["model_peak_mb"] < row["peak_rss_mb"]
    assert list(row["latency_p50_ms"]) == ["host:1t"]  # the emulated timing stays out

    monkeypatch.setattr(common, "console", Console(width=250))
    common.print_summary([row], tmp_path)
    out = capsys.readouterr().out
    header = next(ln for ln in out.splitlines() if "artifact" in ln and "gate" in ln)
    assert "model mem" in header and "qemu-arm64 vs x86" in header
    line = next(ln for ln in out.splitlines() if "pruned_tflite_int8" in ln)
    shown = "bit-exact" if par["max_abs"] == 0 else f"{par['max_abs']:.1e}"
    assert f"{shown} · 100%" in line and f"{row['model_peak_mb']:.1f} MB" in line

    # report.html's device table: the host row with its model memory, the qemu row with its parity
    from types import SimpleNamespace

    from edgeprune.report.sections import devices
    from tests.report._html import parse

    run = SimpleNamespace(outcomes=SimpleNamespace(profile=True), measurements=meas)  # what the section reads
    text = parse(f"<html><body>{devices(run, 'devices')}</body></html>").sections["devices"].text
    host, qemu = meas
    assert f"{host['model_peak_mb']:.1f} MB" in text and "not meaningful" in text
    assert f"max-abs {qemu['parity']['max_abs']:.2e} · top-1 100.0 %" in text
    assert "compared with the x86 ai-edge-litert runtime on 4 test images" in text
