"""One real tiny build shared by every packaging test (session scope), plus a copy the gate rejects."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from rich.console import Console

from edgeprune.config import BuildConfig
from edgeprune.package import BundleResult, build_bundle
from edgeprune.pipeline import run_build

CONFIG = {
    "name": "pkgtest",
    "seed": 0,
    "model": {"name": "test_tinycnn"},
    "data": {"source": "embedded", "max_train": 200, "calib_size": 16},
    "train": {"epochs": 1, "batch_size": 64},
    "prune": {"flops_reduction": 0.5, "tolerance": 0.05},
    "finetune": {"epochs": 1},
    "export": {"precisions": ["fp32", "int8"], "export_dense": False},
    # the gate limits are wide so that this 1-epoch model passes; `rejected_run` tightens them
    "verify": {"max_samples": 60, "bootstrap": 200, "max_bal_acc_drop": 100.0, "max_class_sensitivity_drop": 100.0},
    "profile": {"threads": [1], "warmup": 1, "runs": 3},
}


@pytest.fixture(scope="session")
def built_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("pkg") / "run"
    run_build(BuildConfig.model_validate(CONFIG), run_dir, console=Console(quiet=True))
    return run_dir


@pytest.fixture(scope="session")
def rejected_run(built_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same run with the verify stage re-run under limits no model can meet: every artifact is rejected."""
    run_dir = tmp_path_factory.mktemp("pkg-rejected") / "run"
    shutil.copytree(built_run, run_dir, ignore=shutil.ignore_patterns("bundles"))
    cfg = BuildConfig.model_validate({**CONFIG, "verify": {**CONFIG["verify"], "max_bal_acc_drop": -1000.0}})
    run_build(cfg, run_dir, from_stage="verify", to_stage="verify", console=Console(quiet=True))
    return run_dir


@pytest.fixture(scope="session")
def bundle(built_run: Path, tmp_path_factory: pytest.TempPathFactory) -> BundleResult:
    """The default bundle of the built run, also copied into a fake app assets directory."""
    tmp = tmp_path_factory.mktemp("pkg-bundle")
    return build_bundle(built_run, version="1.0.0", out=tmp / "bundles", into=tmp / "assets" / "bundle")


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A publisher key pair made by the real key generator (private key path; public key at *.pub.pem)."""
    from edgeprune.package.signing import create_key

    private, _, _ = create_key(tmp_path_factory.mktemp("keys") / "publisher.pem")
    return private


@pytest.fixture(scope="session")
def signed_bundle(built_run: Path, signing_key: Path, tmp_path_factory: pytest.TempPathFactory) -> BundleResult:
    """The default bundle signed by ``signing_key`` (through the library entry point the CLI uses)."""
    return build_bundle(built_run, version="2.0.0", out=tmp_path_factory.mktemp("pkg-signed"),
                        signing_key=signing_key)
