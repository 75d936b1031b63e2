"""The Android app's plain-Java core reads a real bundle: checksums, primary artifact, golden inputs, and its
own preprocessing of the golden PNGs reproduces the host-preprocessed inputs. Skips without a JDK.

(apps/android/scripts/ci.sh runs the app's JUnit suite against the synthetic fixture of
tests/android/make_fixture_bundle.py only, so this test compiles the app core with a small checker.)
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
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


# --- trust chain: signatures, zip hygiene, per-artifact golden samples, network policy (JUnit 4) -----------

JUNIT = [Path("/usr/share/java/junit4.jar"), Path("/usr/share/java/hamcrest-core.jar")]
LOCAL_HEADER = b"PK\x03\x04"


def _rezip(src: Path, dst: Path, *, edit=None, drop: tuple[str, ...] = (), add: dict[str, bytes] | None = None,
           names: dict[str, str] | None = None) -> Path:
    """Copy a zip entry by entry, optionally editing, dropping, renaming or adding entries."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            data = zin.read(info)
            if edit is not None:
                data = edit(info.filename, data)
            out = zipfile.ZipInfo((names or {}).get(info.filename, info.filename), date_time=info.date_time)
            out.compress_type = info.compress_type
            zout.writestr(out, data)
        for name, data in (add or {}).items():
            zout.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data,
                          compress_type=zipfile.ZIP_DEFLATED)
    return dst


def _flip(target: str, offset: int = -1):
    def edit(name: str, data: bytes) -> bytes:
        if name != target:
            return data
        b = bytearray(data)
        b[offset] ^= 0x01
        return bytes(b)
    return edit


def _with_listed(src: Path, dst: Path, name: str, data: bytes, compress: int) -> Path:
    """Add ``name`` and list it in model.json with its real sha256 (what an attacker without the key can do)."""
    import hashlib
    import json

    with zipfile.ZipFile(src) as zin:
        model = json.loads(zin.read("model.json"))
    model["files"].append({"path": name, "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)})
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, json.dumps(model).encode() if info.filename == "model.json" else zin.read(info))
        zout.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, compress_type=compress)
    return dst


def _trust_fixtures(built_run: Path, out: Path) -> Path:
    """Signed bundles from the real CLI, plus tampered and hostile variants and the expected outcome of each."""
    import base64
    import hashlib
    import json

    from typer.testing import CliRunner

    from edgeprune.cli import app
    from edgeprune.package.signing import create_key, load_private_key, load_public_key_raw, sign_bundle

    out.mkdir(parents=True)
    keys = {}
    for who in ("publisher", "attacker"):
        private, public, _ = create_key(out / f"{who}.pem")
        keys[who] = private
        (out / f"{who}.key").write_text(base64.b64encode(load_public_key_raw(public)).decode())
    runner = CliRunner()
    for name, extra in (("one", ["--artifact", "pruned_tflite_fp32"]), ("multi", [])):
        res = runner.invoke(app, ["package", str(built_run), *extra, "--version", f"7.0.0-{name}", "--golden", "1",
                                  "--name", name, "--out", str(out / "bundles"),
                                  "--signing-key", str(keys["publisher"])])
        assert res.exit_code == 0, res.output
    good = shutil.copyfile(out / "bundles" / "one-7.0.0-one.zip", out / "good.zip")
    shutil.copyfile(out / "bundles" / "multi-7.0.0-multi.zip", out / "multi.zip")
    cases = [{"zip": "good.zip", "expect": "accept"}, {"zip": "multi.zip", "expect": "accept"},
             {"zip": "good.zip", "pin": "attacker", "expect": "not by the pinned publisher key"}]

    def case(name: str, expect: str, path: Path) -> None:
        assert path.name == name
        cases.append({"zip": name, "expect": expect})

    case("tampered_entry.zip", "sha256 mismatch for pruned_tflite_fp32.tflite",
         _rezip(good, out / "tampered_entry.zip", edit=_flip("pruned_tflite_fp32.tflite", 200)))
    case("tampered_model_json.zip", "model.json was changed after it was signed",
         _rezip(good, out / "tampered_model_json.zip",
                edit=lambda n, d: d.replace(b'"7.0.0-one"', b'"7.0.1-one"') if n == "model.json" else d))
    case("tampered_signature.zip", "signature over model.json does not verify",
         _rezip(good, out / "tampered_signature.zip", edit=lambda n, d: _resign_bytes(n, d)))
    case("missing_signature.zip", "not signed", _rezip(good, out / "missing_signature.zip", drop=("signature.json",)))
    # an attacker re-signs an edited bundle with their own key: the signature is valid, the key is not pinned
    evil_dir = out / "evil"
    with zipfile.ZipFile(good) as zf:
        zf.extractall(evil_dir)
    m = json.loads((evil_dir / "model.json").read_text())
    m["intended_use"] = "Use for diagnosis."
    (evil_dir / "model.json").write_text(json.dumps(m))
    key = keys["attacker"]
    sign_bundle(evil_dir, load_private_key(key))
    case("resigned_by_attacker.zip", "not by the pinned publisher key",
         _rezip(good, out / "resigned_by_attacker.zip",
                edit=lambda n, d: (evil_dir / n).read_bytes() if n in ("model.json", "signature.json") else d))
    # zip hygiene
    case("unlisted_entry.zip", "is not listed in model.json",
         _rezip(good, out / "unlisted_entry.zip", add={"golden/extra.bin": b"x" * 100}))
    nul = _rezip(good, out / "nul_name.zip", add={"golden/aQ.txt": b"x"})  # zipfile cuts names at NUL: patch
    nul.write_bytes(nul.read_bytes().replace(b"golden/aQ.txt", b"golden/a\x00.txt"))
    case("nul_name.zip", "control character", nul)
    case("ctrl_name.zip", "control character", _rezip(good, out / "ctrl_name.zip", add={"golden/a\x1b.txt": b"x"}))
    case("dotdot.zip", "unsafe zip entry name", _rezip(good, out / "dotdot.zip", add={"golden/../../x.sh": b"x"}))
    case("absolute.zip", "absolute path", _rezip(good, out / "absolute.zip", add={"/etc/x.sh": b"x"}))
    case("bomb.zip", "zip bomb", _with_listed(good, out / "bomb.zip", "golden/zeros.bin", bytes(4 << 20),
                                              zipfile.ZIP_DEFLATED))
    # a local header name that differs from the central directory (same length, so offsets stay valid)
    data = bytearray(good.read_bytes())
    name_at = data.index(b"labels.txt")  # the first occurrence is the local header's name
    assert data[name_at - 30 : name_at - 26] == LOCAL_HEADER
    data[name_at:name_at + 10] = b"../lbls.sh"
    (out / "local_name.zip").write_bytes(bytes(data))
    case("local_name.zip", "differs from the central directory", out / "local_name.zip")
    (out / "cases.json").write_text(json.dumps({"cases": cases}, indent=1))
    (out / "base64.json").write_text(json.dumps({
        str(n): base64.b64encode(hashlib.sha256(str(n).encode()).hexdigest()[:n].encode()).decode()
        for n in range(0, 41)}))
    return out


def _resign_bytes(name: str, data: bytes) -> bytes:
    import base64
    import json

    if name != "signature.json":
        return data
    sig = json.loads(data)
    raw = bytearray(base64.b64decode(sig["signature"]))
    raw[5] ^= 0x01
    sig["signature"] = base64.b64encode(bytes(raw)).decode()
    return json.dumps(sig).encode()


@pytest.mark.skipif(not all(p.is_file() for p in JUNIT), reason="JUnit 4 is not installed (apt-get install junit4)")
def test_app_trust_chain_junit(built_run: Path, tmp_path: Path) -> None:
    """The app core refuses tampered, foreign-signed, unsigned and hostile bundles from the real CLI, and its
    network policy never gives the stored key to another server (JUnit 4 on the JVM)."""
    fixtures = _trust_fixtures(built_run, tmp_path / "trust")
    classes = tmp_path / "classes"
    cp = ":".join(str(p) for p in JUNIT)
    sources = [str(p) for p in sorted(CORE.glob("*.java"))] + [str(p) for p in sorted(CHECK.parent.glob("*Test.java"))]
    subprocess.run(["javac", "-J-XX:TieredStopAtLevel=1", "-nowarn", "-encoding", "UTF-8", "-cp", cp, "-d",
                    str(classes), *sources], check=True, capture_output=True, text=True, timeout=300)
    proc = subprocess.run(["java", "-XX:TieredStopAtLevel=1", f"-Dedgeprune.trust={fixtures}", "-cp",
                           f"{classes}:{cp}", "org.junit.runner.JUnitCore", "TrustTest", "NetPolicyTest"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "OK (9 tests)" in proc.stdout
