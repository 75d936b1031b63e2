"""Ed25519 bundle signatures: the signature.json contract, key files, pinning, and tampering is refused."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import stat
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from typer.testing import CliRunner

from edgeprune.cli import app
from edgeprune.errors import EdgepruneError
from edgeprune.fsutil import read_json
from edgeprune.package import BundleResult, build_bundle, verify_bundle
from edgeprune.package.signing import create_key, load_private_key, load_public_key_raw, public_path_for


def _pub(private: Path) -> bytes:
    return load_public_key_raw(public_path_for(private))


def test_signature_json_follows_the_contract(signed_bundle: BundleResult, signing_key: Path) -> None:
    root = signed_bundle.dir
    sig = read_json(root / "signature.json")
    assert set(sig) == {"format", "algorithm", "key_id", "public_key", "signed_file", "signed_sha256", "signature"}
    raw = base64.b64decode(sig["public_key"])
    model_bytes = (root / "model.json").read_bytes()
    assert (sig["format"], sig["algorithm"], sig["signed_file"]) == (1, "Ed25519", "model.json")
    assert raw == _pub(signing_key) and len(raw) == 32
    assert sig["key_id"] == hashlib.sha256(raw).hexdigest()[:16]
    assert sig["signed_sha256"] == hashlib.sha256(model_bytes).hexdigest()
    # an independent check with the library itself: the signature is over the exact bytes of model.json
    ed25519.Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(sig["signature"]), model_bytes)
    # model.json covers every other file, signature.json aside
    listed = {f.path for f in signed_bundle.model_json.files}
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert present - listed == {"model.json", "signature.json"}
    with zipfile.ZipFile(signed_bundle.zip) as zf:
        assert json.loads(zf.read("signature.json")) == sig
    report = verify_bundle(signed_bundle.zip, public_key=_pub(signing_key), golden=False)
    assert report.ok and report.signed and report.key_id == sig["key_id"]
    from edgeprune.server.bundlezip import inspect_bundle

    assert inspect_bundle(signed_bundle.zip, max_uncompressed=1 << 30).model.version == "2.0.0"  # publishable


def test_tampering_and_foreign_keys_are_refused(signed_bundle: BundleResult, signing_key: Path,
                                                tmp_path: Path) -> None:
    pinned = _pub(signing_key)
    copy = tmp_path / "b"
    shutil.copytree(signed_bundle.dir, copy)
    other, _, _ = create_key(tmp_path / "other.pem")
    failures = verify_bundle(copy, public_key=_pub(other), golden=False).failures
    assert len(failures) == 1 and "not by the pinned key" in failures[0]

    model = copy / "model.json"
    original = model.read_bytes()
    model.write_bytes(original.replace(b'"version": "2.0.0"', b'"version": "2.0.1"'))
    failures = verify_bundle(copy, golden=False).failures  # signed bundles are checked even without a pin
    assert any("does not match the signed sha256" in f for f in failures)
    assert any("signature over model.json does not verify" in f for f in failures)
    model.write_bytes(original)

    sig = read_json(copy / "signature.json")
    raw_sig = bytearray(base64.b64decode(sig["signature"]))
    raw_sig[0] ^= 1
    (copy / "signature.json").write_text(json.dumps({**sig, "signature": base64.b64encode(raw_sig).decode()}))
    assert verify_bundle(copy, golden=False).failures == ["the Ed25519 signature over model.json does not verify"]
    (copy / "signature.json").write_text(json.dumps({**sig, "extra": 1}))
    assert "malformed" in verify_bundle(copy, golden=False).failures[0]

    (copy / "signature.json").unlink()
    assert verify_bundle(copy, golden=False).ok  # unsigned and nothing pinned: integrity only
    failures = verify_bundle(copy, public_key=pinned, golden=False).failures
    assert failures == ["the bundle is not signed (no signature.json) but a public key is pinned"]


def test_key_files(tmp_path: Path) -> None:
    private, public, kid = create_key(tmp_path / "k.pem")
    assert public == tmp_path / "k.pub.pem" and len(kid) == 16
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in private.read_bytes() and b"PUBLIC KEY" in public.read_bytes()
    assert load_public_key_raw(base64.b64encode(load_public_key_raw(public)).decode()) == load_public_key_raw(public)
    with pytest.raises(EdgepruneError, match="already exists"):
        create_key(private)
    private.chmod(0o644)
    with pytest.raises(EdgepruneError, match="readable by other users.*chmod 600"):
        load_private_key(private)
    private.chmod(0o600)
    assert isinstance(load_private_key(private), ed25519.Ed25519PrivateKey)
    with pytest.raises(EdgepruneError, match="not an unencrypted PEM private key"):
        load_private_key(_chmod600(public))
    with pytest.raises(EdgepruneError, match="does not exist.*signing-key create"):
        load_private_key(tmp_path / "missing.pem")


def _chmod600(p: Path) -> Path:
    p.chmod(0o600)
    return p


def test_cli_creates_a_key_and_signs(built_run: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    key = tmp_path / "pub" / "publisher.pem"
    key.parent.mkdir()
    res = runner.invoke(app, ["signing-key", "create", str(key)])
    assert res.exit_code == 0, res.output
    raw = load_public_key_raw(key.with_name("publisher.pub.pem"))
    assert base64.b64encode(raw).decode() in res.output.replace("\n", "")
    res = runner.invoke(app, ["signing-key", "create", str(key)])
    assert res.exit_code == 2 and "already exists" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["package", str(built_run), "--artifact", "pruned_tflite_fp32", "--version", "9",
                              "--golden", "1", "--out", str(tmp_path / "out"), "--signing-key", str(key)])
    assert res.exit_code == 0, res.output
    assert "signed with Ed25519 key" in res.output
    zip_path = next((tmp_path / "out").glob("*.zip"))
    assert verify_bundle(zip_path, public_key=raw).ok
    key.chmod(0o640)
    res = runner.invoke(app, ["package", str(built_run), "--out", str(tmp_path / "out2"), "--signing-key", str(key)])
    assert res.exit_code == 2 and "chmod 600" in res.output
    assert not (tmp_path / "out2").exists()  # refused before any work


def test_unsigned_bundles_still_build(bundle: BundleResult) -> None:
    assert not (bundle.dir / "signature.json").exists()
    with pytest.raises(EdgepruneError, match="does not exist"):
        build_bundle(bundle.dir, signing_key=bundle.dir / "nope.pem")
