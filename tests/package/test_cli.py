"""`edgeprune package` through Typer: options reach the bundle, user errors exit non-zero with one line."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from edgeprune.cli.package import package
from edgeprune.package import verify_bundle
from edgeprune.schemas import BundleModelJson


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("package")(package)
    app.command("other")(lambda: None)  # two commands, so "package" is a real sub-command as in edgeprune
    return app


def test_cli_packages_with_options(built_run: Path, tmp_path: Path) -> None:
    use = tmp_path / "use.txt"
    use.write_text("Demo for the packaging tests only.\nNot for clinical use.\n")
    res = CliRunner().invoke(_app(), [
        "package", str(built_run), "--app", "android", "--artifact", "pruned_tflite_fp32", "--version", "3.1.4",
        "--name", "fundus demo", "--golden", "1", "--intended-use-file", str(use), "--out", str(tmp_path / "out"),
    ])
    assert res.exit_code == 0, res.output
    root = tmp_path / "out" / "fundus-demo-3.1.4"
    assert str(root.with_name("fundus-demo-3.1.4.zip")) in res.output.replace("\n", "")
    m = BundleModelJson.model_validate_json((root / "model.json").read_bytes())
    assert [a.file for a in m.artifacts] == ["pruned_tflite_fp32.tflite"]
    assert m.intended_use == "Demo for the packaging tests only.\nNot for clinical use."
    assert len(m.golden_samples) == len(m.class_names)
    assert verify_bundle(root.with_name("fundus-demo-3.1.4.zip")).ok


def test_cli_user_errors_exit_non_zero(built_run: Path, rejected_run: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(_app(), ["package", str(rejected_run), "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert "refusing to package" in res.output and "Traceback" not in res.output
    res = runner.invoke(_app(), ["package", str(built_run), "--intended-use", "x", "--intended-use-file", "y"])
    assert res.exit_code == 2 and "only one of them" in res.output
    res = runner.invoke(_app(), ["package", str(built_run), "--golden", "0"])
    assert res.exit_code == 2 and "--golden must be at least 1" in res.output
