"""Config file: keys mirror the flags, typos are rejected with a suggestion."""

from __future__ import annotations

import pytest

from edgeprune.config import load_config
from edgeprune.errors import EdgepruneError


def test_toml_and_flag_override(tmp_path) -> None:
    p = tmp_path / "edgeprune.toml"
    p.write_text('seed = 3\n[model]\nname = "vgg11_bn"\n[prune]\nflops_reduction = 0.3\ncriterion = "l1"\n')
    cfg = load_config(p, {"prune.flops_reduction": 0.45})
    assert cfg.model.name == "vgg11_bn" and cfg.seed == 3 and cfg.prune.flops_reduction == 0.45


def test_typo_gets_suggestion(tmp_path) -> None:
    p = tmp_path / "edgeprune.toml"
    p.write_text("[prune]\nflop_reduction = 0.3\n")
    with pytest.raises(EdgepruneError, match="did you mean 'flops_reduction'"):
        load_config(p)


def test_unknown_section_and_bad_value(tmp_path) -> None:
    with pytest.raises(EdgepruneError, match="did you mean 'prune'"):
        load_config(None, {"prun.criterion": "l1"})
    with pytest.raises(EdgepruneError, match="invalid value for 'prune.flops_reduction'"):
        load_config(None, {"prune.flops_reduction": 1.5})


def test_missing_and_broken_file(tmp_path) -> None:
    with pytest.raises(EdgepruneError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[prune\n")
    with pytest.raises(EdgepruneError, match="not valid TOML"):
        load_config(bad)
