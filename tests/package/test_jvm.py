"""The Android app's plain-Java core reads a real bundle: checksums, primary artifact, golden inputs, and its
own preprocessing of the golden PNGs reproduces the host-preprocessed inputs. Skips without a JDK.

(apps/android/scripts/ci.sh runs the app's JUnit suite against the synthetic fixture of
tests/android/make_fixture_bundle.py only, so this test compiles the app core with a small checker.)
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from edgeprune.package import BundleResult

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "apps" / "android" / "app" / "src" / "main" / "java" / "org" / "edgeprune" / "demo" / "core"
CHECK = Path(__file__).with_name("jvm") / "BundleCheck.java"

pytestmark = pytest.mark.skipif(not (shutil.which("javac") and shutil.which("java") and CORE.is_dir()),
                                reason="no JDK (javac/java) or no apps/android sources")


@pytest.fixture(scope="module")
def classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("jvm")
    sources = [str(p) for p in sorted(CORE.glob("*.java"))] + [str(CHECK)]
    subprocess.run(["javac", "-J-XX:TieredStopAtLevel=1", "-nowarn", "-encoding", "UTF-8", "-d", str(out), *sources],
                   check=True, capture_output=True, text=True, timeout=300)
    return out


def _check(classes: Path, root: Path) -> tuple[int, dict[str, str]]:
    proc = subprocess.run(["java", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true", "-cp", str(classes),
                           "BundleCheck", str(root)], capture_output=True, text=True, timeout=300)
    out = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    return proc.returncode, out


def test_app_core_reads_the_bundle(classes: Path, bundle: BundleResult, tmp_path: Path) -> None:
    m = bundle.model_json
    rc, out = _check(classes, bundle.dir)
    assert rc == 0, out
    assert (out["name"], out["version"]) == (m.name, m.version)
    assert out["primary"] == m.artifacts[0].file and out["primary_gate"] == "passed"
    assert out["primary_input_dtype"] == "int8"
    assert float(out["primary_input_scale"]) == pytest.approx(m.artifacts[0].inputs[0].quant_scale)
    assert out["labels"].split(",") == m.class_names
    assert int(out["files"]) == len(m.files) and int(out["golden"]) == len(m.golden_samples)
    assert int(out["npy_shape_mismatches"]) == 0
    assert float(out["max_preprocess_diff"]) <= 1e-5  # the app's preprocessing matches the host's

    tampered = tmp_path / "bundle"
    shutil.copytree(bundle.dir, tampered)
    model = tampered / m.artifacts[0].file
    data = bytearray(model.read_bytes())
    data[100] ^= 0x01
    model.write_bytes(bytes(data))
    rc, out = _check(classes, tampered)
    assert rc == 3 and "sha256 mismatch for " + m.artifacts[0].file in out["refused"]
