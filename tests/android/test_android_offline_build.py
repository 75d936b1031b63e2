"""The Android demo app: offline APK build + checks + JVM unit tests (apps/android/scripts/ci.sh).

The fixtures the JVM tests read (a bundle validated by BundleModelJson, latency_stats results,
PreprocessContract.apply outputs, numpy files) are made here by the Python side, so the Java code is
checked against the real Python implementation. Skips only when the Debian Android tools are absent.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest

from edgeprune.schemas import Measurement
from tests.android.make_fixture_bundle import make_fixture

ANDROID = Path(__file__).resolve().parents[2] / "apps" / "android"
CI = ANDROID / "scripts" / "ci.sh"
BUILD = ANDROID / "scripts" / "build_offline_apk.sh"
CACHE = Path(os.environ.get("EDGEPRUNE_ANDROID_CACHE", Path.home() / ".cache" / "edgeprune-android"))
TOOLS = ["aapt", "aapt2", "zipalign", "apksigner", "dexdump", "javac", "java", "keytool", "zip", "unzip"]
JARS = [Path("/usr/share/java/junit4.jar"), Path("/usr/share/java/hamcrest-core.jar")]
SDK_JARS = [
    CACHE / "root/usr/share/java/com.android.android-23.jar",
    CACHE / "root/usr/share/java/com.android.dx.jar",
]
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed, (\d+) skipped$")


def _missing_tools() -> list[str]:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    missing += [str(j) for j in JARS + SDK_JARS if not j.is_file()]
    return missing


pytestmark = pytest.mark.skipif(
    bool(_missing_tools()),
    reason=(
        f"Debian Android tools absent ({', '.join(_missing_tools())}); run apps/android/scripts/ci.sh once "
        "(apt-get install aapt zipalign apksigner dexdump junit4 zip unzip + bullseye android.jar/dx into the cache)"
    ),
)


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("android")
    fixtures = make_fixture(tmp / "fixtures")
    out = tmp / "ci"
    env = {
        **os.environ,
        "EDGEPRUNE_ANDROID_SKIP_APT": "1",
        "EDGEPRUNE_ANDROID_FIXTURES": str(fixtures),
        "EDGEPRUNE_ANDROID_BUNDLE": str(fixtures / "bundle"),
        "EDGEPRUNE_ANDROID_OUT": str(out),
    }
    proc = subprocess.run([str(CI)], env=env, capture_output=True, text=True, timeout=900)
    return {"proc": proc, "out": out, "fixtures": fixtures, "apk": out / "edgeprune-demo-offline-debug.apk"}


def test_ci_builds_checks_and_runs_jvm_tests(ci_run: dict) -> None:
    proc = ci_run["proc"]
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    last = proc.stdout.strip().splitlines()[-1]
    m = SUMMARY.match(last)
    assert m, f"last line is not the JVM summary: {last!r}"
    passed, failed, skipped = map(int, m.groups())
    assert failed == 0 and skipped == 0, log[-4000:]  # fixtures were given, so nothing may skip
    assert passed >= 30
    assert "FAIL:" not in proc.stdout
    assert "Verifies" in (ci_run["out"] / "apksigner.txt").read_text()


def test_apk_ships_the_bundle_with_the_model_stored(ci_run: dict) -> None:
    assert ci_run["proc"].returncode == 0
    bundle: Path = ci_run["fixtures"] / "bundle"
    with zipfile.ZipFile(ci_run["apk"]) as apk:
        names = set(apk.namelist())
        assert {"AndroidManifest.xml", "classes.dex", "resources.arsc"} <= names
        for f in bundle.rglob("*"):
            if f.is_file():
                entry = "assets/bundle/" + f.relative_to(bundle).as_posix()
                assert apk.read(entry) == f.read_bytes(), entry
        info = apk.getinfo("assets/bundle/model.tflite")
        assert info.compress_type == zipfile.ZIP_STORED
    # stored + 4-byte aligned data is what lets AssetFileDescriptor mmap the model from the APK;
    # the local header's extra field (zipalign's padding) differs from the central directory's
    raw = ci_run["apk"].read_bytes()
    local = raw[info.header_offset : info.header_offset + 30]
    assert local[:4] == b"PK\x03\x04"
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    data_offset = info.header_offset + 30 + name_len + extra_len
    assert data_offset % 4 == 0
    assert raw[data_offset : data_offset + info.file_size] == (bundle / "model.tflite").read_bytes()


@pytest.mark.skipif(not Path("/usr/share/android-framework-res/framework-res.apk").is_file(),
                    reason="apt-get install android-framework-res (API 24+ manifest attributes for aapt2)")
def test_apk_allows_cleartext_only_to_loopback_and_the_emulator(ci_run: dict) -> None:
    assert ci_run["proc"].returncode == 0
    apk = str(ci_run["apk"])
    manifest = subprocess.run(["aapt", "dump", "xmltree", apk, "AndroidManifest.xml"], capture_output=True,
                              text=True, check=True).stdout
    assert re.search(r"android:usesCleartextTraffic\(0x[0-9a-f]+\)=\(type 0x12\)0x0$", manifest, re.M)
    assert "android:networkSecurityConfig" in manifest
    config = subprocess.run(["aapt", "dump", "xmltree", apk, "res/xml/network_security_config.xml"],
                            capture_output=True, text=True, check=True).stdout
    base, domains = config.split("E: domain-config", 1)
    assert "cleartextTrafficPermitted=(type 0x12)0x0" in base  # everything else: HTTPS only
    assert re.findall(r'C: "([^"]+)"', domains) == ["127.0.0.1", "localhost", "10.0.2.2"]
    assert "includeSubdomains=(type 0x12)0xffffffff" not in domains


def test_results_json_written_by_java_validates_as_measurement(ci_run: dict) -> None:
    assert ci_run["proc"].returncode == 0
    out: Path = ci_run["out"] / "jvm" / "out"
    ok = Measurement.model_validate_json((out / "measurement_ok.json").read_text())
    assert ok.device.kind == "android-app"
    assert ok.latency is not None and ok.latency.n == 7 and ok.latency.p50_ms <= ok.latency.p99_ms
    failed = json.loads((out / "measurement_error.json").read_text())
    assert failed.pop("error") == "runtime not bundled in this build"
    parsed = Measurement.model_validate(failed)
    assert parsed.latency is None and parsed.init_ms is None


def test_build_script_refuses_a_directory_without_model_json(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    proc = subprocess.run(
        [str(BUILD), "--no-fetch", "--bundle", str(tmp_path / "empty"), str(tmp_path / "x.apk")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "no model.json" in proc.stderr
    assert not (tmp_path / "x.apk").exists()


def test_build_script_pins_the_publisher_key(tmp_path: Path) -> None:
    import base64

    from edgeprune.package.signing import create_key, load_public_key_raw

    _, public, _ = create_key(tmp_path / "publisher.pem")
    key = base64.b64encode(load_public_key_raw(public)).decode()
    apk = tmp_path / "pinned.apk"
    proc = subprocess.run([str(BUILD), "--no-fetch", "--publisher-key", key, str(apk)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    values = subprocess.run(["aapt", "dump", "--values", "resources", str(apk)], capture_output=True, text=True,
                            check=True).stdout
    assert re.search(r"string/publisher_public_key: .*\n\s+\(string8\) \"" + re.escape(key) + '"', values)
    bad = subprocess.run([str(BUILD), "--no-fetch", "--publisher-key", "not-a-key", str(tmp_path / "x.apk")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "base64 of 32 bytes" in bad.stderr and not (tmp_path / "x.apk").exists()
