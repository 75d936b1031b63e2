"""The search's flags and config keys, and their pre-flight checks (bad input: one line, exit 2, nothing written)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgeprune.config import load_config, overrides
from edgeprune.errors import EdgepruneError
from edgeprune.preflight import check_build

ROOT = Path(__file__).resolve().parents[2]


def test_flags_map_to_the_search_section() -> None:
    cfg = load_config(None, overrides(objective="size", latency_budget=4.5, size_budget=300.0, jobs=2,
                                      min_class_sensitivity=60.0, search_criteria="l1, taylor", search_trials=5,
                                      ray_address="auto"))
    s = cfg.search
    assert (s.objective, s.latency_budget_ms, s.size_budget_kb, s.jobs, s.min_class_sensitivity, s.trials,
            s.ray_address) == ("size", 4.5, 300.0, 2, 60.0, 5, "auto")
    assert s.criteria == ["l1", "taylor"]
    assert cfg.searches() and cfg.prune.flops_reduction is None and cfg.run_name().endswith("-search")


def test_a_fixed_budget_ignores_the_search_options_with_a_note() -> None:
    notes = check_build(load_config(None, overrides(flops_reduction=0.5, objective="macs")), stages=("train", "prune"))
    assert any("no search" in n for n in notes)


@pytest.mark.parametrize(("options", "needle"), [
    ({"search.criteria": ["l1", "nope"]}, "unknown criterion 'nope'"),
    ({"search.min_level": 0.7, "search.max_level": 0.3}, "min_level 0.7 is above max_level 0.3"),
    ({"search.objective": "fastest"}, "invalid value for 'search.objective'"),
    ({"search.jobs": 0}, "invalid value for 'search.jobs'"),
])
def test_bad_search_settings_fail_before_any_work(options: dict, needle: str) -> None:
    with pytest.raises(EdgepruneError, match=needle):
        check_build(load_config(None, options), stages=("train", "prune"))


def test_cli_bad_objective_is_one_line_and_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "edgeprune", "build", "--objective", "fastest", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "search.objective" in lines[0] and not out.exists()
