"""The local bundle verifier reads zips like the server: every entry is checked while it is inflated."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from edgeprune.errors import EdgepruneError
from edgeprune.package import BundleResult, verify_bundle
from edgeprune.zipsafe import ZipLimits, ZipProblem, scan_zip
from tests.server._zips import RawEntry, build_zip, bundle_entries, entry, zero_bomb


def _write(tmp_path: Path, entries: list[RawEntry]) -> Path:
    path = tmp_path / "bundle.zip"
    path.write_bytes(build_zip(entries))
    return path


def _cases() -> dict[str, tuple[list[RawEntry], str]]:
    good, _ = bundle_entries()
    bomb, size, crc = zero_bomb()
    tfl = good[0]
    return {
        "bomb with an honest header": ([*good, RawEntry("pad.bin", bomb, crc, size)], "zip bomb"),
        "bomb with a lying header": ([*good, RawEntry("pad.bin", bomb, crc, 4096)], "zip bomb"),
        "local header names another file": ([*good, entry("a.txt", b"x", local_name="../../x.sh")],
                                            "local header"),
        "NUL in name": ([*good, entry("labels.txt\x00.sh", b"x")], "NUL"),
        "control character": ([*good, entry("x\ny.txt", b"x")], "control character"),
        "dot-dot": ([*good, entry("../evil.txt", b"x")], "'..'"),
        "absolute": ([*good, entry("/tmp/evil.txt", b"x")], "absolute"),
        "size in header lies": ([RawEntry(**{**tfl.__dict__, "size": tfl.size - 1}), *good[1:]], "inflates to"),
        "CRC lies": ([RawEntry(**{**tfl.__dict__, "crc": tfl.crc ^ 0xFF}), *good[1:]], "CRC"),
    }


@pytest.mark.parametrize("case", list(_cases()))
def test_verify_refuses_hostile_zips_before_extracting(tmp_path: Path, case: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    entries, text = _cases()[case]
    path = _write(tmp_path, entries)
    work = tmp_path / "tmp"
    work.mkdir()
    monkeypatch.setenv("TMPDIR", str(work))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    with pytest.raises(EdgepruneError, match="unsafe entry|not a safe bundle zip") as err:
        verify_bundle(path)
    assert text in str(err.value)
    assert not list(work.iterdir())  # the partial extraction is gone
    assert not (tmp_path / "x.sh").exists() and not (tmp_path.parent / "evil.txt").exists()


def test_unlisted_entry_in_a_zip_is_a_failure(bundle: BundleResult, tmp_path: Path) -> None:
    path = tmp_path / "extra.zip"
    with zipfile.ZipFile(bundle.zip) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr("notes.txt", "not in model.json")
    report = verify_bundle(path, golden=False)
    assert "notes.txt is in the bundle but not listed in model.json" in report.failures


def test_real_bundle_zip_passes_the_zip_checks(bundle: BundleResult) -> None:
    entries = scan_zip(bundle.zip, ZipLimits())
    model = json.loads(Path(bundle.dir / "model.json").read_text())
    listed = {f["path"] for f in model["files"]} | {a["file"] for a in model["artifacts"]}
    assert listed | {"model.json"} <= set(entries)
    assert verify_bundle(bundle.zip, golden=False).ok


def test_extraction_writes_exactly_what_was_checked(tmp_path: Path) -> None:
    good, doc = bundle_entries()
    out = tmp_path / "out"
    out.mkdir()
    entries = scan_zip(_write(tmp_path, good), ZipLimits(), extract_to=out, keep={"model.json": 1 << 20})
    assert json.loads(entries["model.json"].data or b"") == doc
    assert sorted(p.name for p in out.iterdir()) == ["labels.txt", "model.json", "model.tflite"]
    with pytest.raises(ZipProblem, match="larger than 10 bytes"):
        scan_zip(_write(tmp_path, good), ZipLimits(), keep={"model.json": 10})
    small = ZipLimits(max_total=1 << 20, max_entry=100)
    with pytest.raises(ZipProblem) as err:  # the limit applies to the real size, even when the header says less
        scan_zip(_write(tmp_path, [RawEntry(**{**e.__dict__, "size": 50}) for e in good]), small)
    assert err.value.kind == "too-large" and "more than 100 bytes" in err.value.message
