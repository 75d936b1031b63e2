"""The offline-built APK carries a real bundle: signed, aligned, and the model stored uncompressed."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from edgeprune.package import BundleResult

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "apps/android/scripts/build_offline_apk.sh"


def test_offline_apk_with_real_bundle(bundle: BundleResult, tmp_path: Path) -> None:
    missing = [t for t in ("aapt2", "zipalign", "apksigner", "javac") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"Android build tools missing: {', '.join(missing)} (installed by .ci/run)")
    apk = tmp_path / "demo.apk"
    proc = subprocess.run(["bash", str(SCRIPT), "--bundle", str(bundle.dir), str(apk)], capture_output=True,
                          text=True, timeout=600)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0 and "android.jar" in output and "download" in output:
        pytest.skip("android.jar/dx could not be fetched from Debian bullseye")
    assert proc.returncode == 0, proc.stdout[-1500:] + proc.stderr[-1500:]
    with zipfile.ZipFile(apk) as z:
        models = [i for i in z.infolist() if i.filename.endswith(".tflite")]
        assert models, "no model in the APK"
        assert all(i.compress_type == zipfile.ZIP_STORED for i in models), "models must be stored for mmap loading"
        names = set(z.namelist())
    assert any(n.endswith("bundle/model.json") for n in names)
    verify = subprocess.run(["apksigner", "verify", str(apk)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    aligned = subprocess.run(["zipalign", "-c", "-p", "4", str(apk)], capture_output=True, text=True)
    assert aligned.returncode == 0
