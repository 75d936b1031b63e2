"""report.html of a real tiny build: sections, inline images, offline-only references, 'not run' and red gates."""

from __future__ import annotations

import json
import re
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from edgeprune.cli.report import report
from edgeprune.report import write_html_report
from edgeprune.report.plots import pareto_front
from tests.report._html import parse

SECTIONS = ["summary", "pareto", "data", "search", "channels", "sensitivity", "confusion", "drift", "curve", "devices",
            "bakeoff", "provenance", "stages"]
# images per section: confusion = the dense float model + each pruned artifact (fp32, int8)
PLOTS = {"pareto": 1, "channels": 1, "sensitivity": 1, "confusion": 3, "curve": 1}


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


def _copy_manifest(run: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    shutil.copyfile(run / "manifest.json", dest / "manifest.json")
    return dest


def _edit_manifest(run: Path, fn: Any) -> None:
    path = run / "manifest.json"
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def _stage(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in data["stages"] if s["name"] == name)


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command("report")(report)

    @app.callback()
    def _main() -> None:  # keep 'report' a sub-command, as in the real CLI
        pass

    return app


def test_every_build_writes_a_report_with_all_sections_and_plots(tiny_run_dir: Path) -> None:
    page = parse((tiny_run_dir / "report.html").read_text(encoding="utf-8"))
    assert list(page.sections) == SECTIONS
    for sid, count in PLOTS.items():
        assert len(page.sections[sid].images) == count, sid
        for png in page.sections[sid].images:
            width, height = _png_size(png)
            assert width > 200 and height > 150
    report_json = json.loads((tiny_run_dir / "report.json").read_text())
    summary = page.sections["summary"].text
    for row in report_json["artifacts"]:
        assert row["name"] in summary
        assert row["name"] in page.sections["drift"].text
        assert f"{row['drift']['max_abs']:.3g}" in page.sections["drift"].text
    assert summary.count("PASS") == sum(r["gate_passed"] is True for r in report_json["artifacts"])
    measured = json.loads((tiny_run_dir / "manifest.json").read_text())
    for m in _stage(measured, "profile")["summary"]["measurements"]:
        assert m["artifact_name"] in page.sections["devices"].text
    provenance = page.sections["provenance"].text
    assert "pytest tiny-run" in provenance and measured["versions"]["torch"] in provenance
    assert measured["reproducibility"]["splits"]["test"]["sha256"] in provenance
    for layer, w in _stage(measured, "prune")["summary"]["widths"].items():
        assert w["after"] < w["before"] and layer  # the channel chart has something to show
    assert "not run" in page.sections["bakeoff"].text and page.sections["bakeoff"].css == "empty"


def test_the_report_references_nothing_outside_itself(tiny_run_dir: Path) -> None:
    text = (tiny_run_dir / "report.html").read_text(encoding="utf-8")
    page = parse(text)
    assert page.urls, "expected inline images and in-page links"
    for url in page.urls:
        assert url.startswith("data:image/png;base64,") or url.startswith("#"), url[:80]
    assert not {"script", "link", "iframe", "object", "embed", "base"} & set(page.tags)
    assert not re.search(r"url\s*\(|@import|https?:|//[a-z0-9.-]+\.[a-z]{2,}", text, flags=re.I)
    assert "default-src 'none'" in page.meta["content-security-policy"]


def test_gate_failures_are_red_and_missing_data_is_not_run(tiny_run_dir: Path, tmp_path: Path) -> None:
    run = _copy_manifest(tiny_run_dir, tmp_path / "failed")

    def reject(data: dict[str, Any]) -> None:
        verdict = _stage(data, "verify")["summary"]["artifacts"]["pruned_tflite_int8"]["gate"]
        verdict.update(passed=False, reasons=["balanced accuracy may drop by up to 9.0 pp (limit 5)"])
        _stage(data, "profile")["summary"]["measurements"][0]["timing_meaningful"] = False

    _edit_manifest(run, reject)
    page = parse(write_html_report([run], run / "out.html").read_text())
    assert "REJECTED" in page.sections["summary"].text and "1 of 4" in page.sections["summary"].text
    assert "may drop by up to 9.0 pp" in page.sections["gate"].text
    assert page.sections["gate"].css == "bad"
    assert 'class="card rejected"' in (run / "out.html").read_text()
    assert "not meaningful" in page.sections["devices"].text

    partial = _copy_manifest(tiny_run_dir, tmp_path / "partial")
    _edit_manifest(partial, lambda d: d.update(stages=[s for s in d["stages"] if s["name"] in ("train", "prune")]))
    page = parse(write_html_report([partial], partial / "out.html").read_text())
    assert list(page.sections) == SECTIONS
    for sid in ("pareto", "sensitivity", "confusion", "drift", "devices"):
        assert page.sections[sid].text.count("not run") == 1 and not page.sections[sid].images, sid
    assert len(page.sections["channels"].images) == 1  # prune finished: its chart is still there
    assert "no artifact was exported" in page.sections["summary"].text


def _bakeoff_rows() -> list[dict[str, Any]]:
    """Rows as `edgeprune compare` writes them (metrics under 'test')."""
    return [{"criterion": c, "target_reduction": r, "budget": "flops", "seed": s,
             "test": {"balanced_accuracy": acc, "macro_f1": acc - 0.1}}
            for c, base in (("l1", 0.85), ("taylor", 0.80)) for r in (0.3, 0.5)
            for s, acc in ((0, base - 0.05 - r / 10), (1, base + 0.05 - r / 10))]


def test_compare_json_adds_the_bakeoff_plot(tiny_run_dir: Path, tmp_path: Path) -> None:
    run = _copy_manifest(tiny_run_dir, tmp_path / "compare")
    payload = {"rows": _bakeoff_rows(), "dense": {"test": {"balanced_accuracy": 0.9}}, "complete": True}
    (run / "compare.json").write_text(json.dumps(payload))
    page = parse(write_html_report([run], run / "out.html").read_text())
    bake = page.sections["bakeoff"]
    assert len(bake.images) == 1 and "not run" not in bake.text
    assert "82.0 ± 7.1" in bake.text  # l1 at 30%: seeds 0.77 and 0.87
    assert "taylor" in bake.text and "75.0 ± 7.1" in bake.text  # taylor at 50%: 0.70 and 0.80
    # a bake-off directory without a build manifest still gets a report (only its bake-off section)
    only = tmp_path / "bakeoff-dir"
    only.mkdir()
    (only / "compare.json").write_text(json.dumps({**payload, "complete": False}))
    page = parse(write_html_report([only], only / "report.html").read_text())
    assert len(page.sections["bakeoff"].images) == 1 and "still running" in page.sections["bakeoff"].text
    assert "not run" in page.sections["channels"].text


def test_flat_compare_rows_are_understood_too() -> None:
    from edgeprune.report.collect import compare_row

    flat = compare_row({"criterion": "l1", "flops_reduction": 0.5, "seed": 0, "balanced_accuracy": 0.8,
                        "macro_f1": 0.7})
    nested = compare_row(_bakeoff_rows()[0])
    assert flat == {"criterion": "l1", "seed": 0, "budget": "flops", "reduction": 0.5, "balanced_accuracy": 0.8,
                    "macro_f1": 0.7}
    assert nested is not None and nested["reduction"] == 0.3 and nested["balanced_accuracy"] == pytest.approx(0.77)
    assert compare_row({"criterion": "l1"}) is None


def test_report_command_combines_runs_into_one_pareto(tiny_run_dir: Path, tmp_path: Path) -> None:
    a, b = _copy_manifest(tiny_run_dir, tmp_path / "a"), _copy_manifest(tiny_run_dir, tmp_path / "b")
    out = tmp_path / "both.html"
    result = CliRunner().invoke(_cli(), ["report", str(a), str(b), "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = parse(out.read_text())
    assert len(page.sections["pareto"].images) == 1
    for i in (1, 2):
        assert f"channels-{i}" in page.sections and f"provenance-{i}" in page.sections
    assert page.sections["summary"].text.count("pruned_tflite_fp32") == 2
    single = CliRunner().invoke(_cli(), ["report", str(a)])
    assert single.exit_code == 0 and (a / "report.html").is_file()
    missing = CliRunner().invoke(_cli(), ["report", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


@pytest.mark.parametrize("points,expected", [
    ([(1.0, 0.8), (2.0, 0.9), (1.5, 0.7), (3.0, 0.85)], [(1.0, 0.8), (2.0, 0.9)]),
    ([(1.0, 0.9), (2.0, 0.8)], [(1.0, 0.9)]),
])
def test_pareto_front_keeps_only_undominated_points(points: list, expected: list) -> None:
    pts = [{"latency_ms": lat, "balanced_accuracy": acc} for lat, acc in points]
    assert [(p["latency_ms"], p["balanced_accuracy"]) for p in pareto_front(pts)] == expected
