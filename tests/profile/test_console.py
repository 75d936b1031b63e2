"""The build/verify console table says how each number was obtained: Core ML off macOS is "simulated"."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import pytest

from edgeprune.rundir.artifacts import artifact_row
from edgeprune.rundir.outcomes import Agreement, ExportedArtifact, GateResult, VerifiedArtifact


def _verified(session, net, x: np.ndarray) -> VerifiedArtifact:  # noqa: ANN001
    import torch

    from edgeprune.metrics import agreement

    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    agree = agreement(np.asarray(session.run(x)), ref)
    return VerifiedArtifact(vs_torch=Agreement(n=len(x), top1_agreement=agree["top1_agreement"],
                                               max_abs=agree["max_abs"]),
                            verification_kind=getattr(session, "verification_kind", "runtime"),
                            gate=GateResult(passed=True))  # fmt: skip


@pytest.mark.skipif(platform.system() == "Darwin", reason="on macOS Core ML predicts for real (nothing simulated)")
def test_coreml_row_says_simulated(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    torch = pytest.importorskip("torch")
    pytest.importorskip("coremltools")
    from rich.console import Console

    import edgeprune.cli._common as common
    from edgeprune.export import ExportRequest, get_exporter
    from edgeprune.report.schema import ArtifactRow
    from edgeprune.runtimes import open_session
    from edgeprune.runtimes.coreml import SIMULATED, reference_models
    from tests._nets import TinyConvNet

    torch.manual_seed(0)
    net = TinyConvNet().eval()
    x = np.random.default_rng(0).standard_normal((4, 3, 16, 16)).astype(np.float32)
    rows = []
    for fmt in ("coreml", "tflite"):
        rec = get_exporter(fmt).export(ExportRequest(model=net, example_input=torch.from_numpy(x[:1]),
                                                     precision="fp32", out_dir=tmp_path, name=f"tiny_{fmt}"))
        path = tmp_path / rec.file
        with reference_models({path: net}):
            session = open_session(path, fmt=fmt, threads=1)
        art = ExportedArtifact(name=f"tiny_{fmt}", file=rec.file, format=fmt, precision="fp32", sha256=rec.sha256,
                               size_bytes=rec.size_bytes)
        rows.append(ArtifactRow.model_validate(artifact_row(art, _verified(session, net, x), [])).model_dump())
    assert rows[0]["verification_kind"] == SIMULATED and rows[1]["verification_kind"] == "runtime"
    assert common.SIMULATED_KIND == SIMULATED  # the console's copy of the constant (not imported: slow import)

    monkeypatch.setattr(common, "console", Console(width=200))
    common.print_summary(rows, tmp_path)
    lines = capsys.readouterr().out.splitlines()
    coreml = next(ln for ln in lines if "tiny_coreml" in ln)
    tflite = next(ln for ln in lines if "tiny_tflite" in ln)
    assert "100.0% simulated" in coreml and "pass (simulated)" in coreml
    assert "simulated" not in tflite and "100.0%" in tflite and "pass" in tflite
