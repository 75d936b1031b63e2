"""DICOM data: files written here with pydicom, then loaded; pixel maths, the recorded contract and the errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, MediaStorageDirectoryStorage, generate_uid

from edgeprune.contract import DicomDecoding, PreprocessContract
from edgeprune.data import check_source, load_dataset
from edgeprune.data.dicom import decode_file, parse_window
from edgeprune.errors import EdgepruneError
from tests.data._dicom import class_folder, ramp, write_dicom


def _linear(x: float, c: float, w: float) -> int:
    """DICOM PS3.3 C.11.2.1.2.1 written out piecewise, onto 0..255."""
    if x <= c - 0.5 - (w - 1) / 2:
        return 0
    if x > c - 0.5 + (w - 1) / 2:
        return 255
    return int(np.rint(((x - (c - 0.5)) / (w - 1) + 0.5) * 255))


def _one(tmp_path: Path, pixels: np.ndarray, **kw: object) -> tuple[np.ndarray, object]:
    path = write_dicom(tmp_path / "one.dcm", pixels, **kw)  # type: ignore[arg-type]
    return decode_file(path, tmp_path, None)


def test_rescale_then_file_window(tmp_path: Path) -> None:
    stored = np.array([[0, 300, 462, 512], [520, 562, 700, 4000]])
    img, facts = _one(tmp_path, stored, slope=2.0, intercept=-1024.0, window=(40.0, 400.0))
    expected = [[_linear(v * 2.0 - 1024.0, 40.0, 400.0) for v in row] for row in stored]
    assert img.dtype == np.uint8 and img.tolist() == expected
    assert img[0, 0] == 0 and img[1, 3] == 255 and 0 < img[1, 0] < 255  # both clips and the ramp are hit
    assert facts.window == (40.0, 400.0) and facts.window_source == "file"


def test_signed_pixels_and_multivalued_window(tmp_path: Path) -> None:
    stored = np.array([[-1000, -600, 0, 200]])
    img, facts = _one(tmp_path, stored, signed=True, window=([-600.0, 40.0], [1500.0, 400.0]))
    assert img.tolist() == [[_linear(v, -600.0, 1500.0) for v in stored[0]]]  # the first of several windows
    assert facts.window == (-600.0, 1500.0)


def test_monochrome1_is_inverted(tmp_path: Path) -> None:
    stored = ramp(6, 6, 0, 1000)
    mono2, _ = _one(tmp_path, stored, window=(500.0, 800.0))
    mono1, facts = _one(tmp_path, stored, window=(500.0, 800.0), photometric="MONOCHROME1")
    assert (mono1.astype(int) + mono2.astype(int) == 255).all() and facts.photometric == "MONOCHROME1"
    assert mono2[0, 0] == 0 and mono1[0, 0] == 255


def test_user_window_replaces_the_files(tmp_path: Path) -> None:
    stored = np.array([[0, 100, 200, 300]])
    img, facts = decode_file(write_dicom(tmp_path / "u.dcm", stored, window=(1000.0, 10.0)), tmp_path, (150.0, 101.0))
    assert img.tolist() == [[_linear(v, 150.0, 101.0) for v in stored[0]]] and facts.window_source == "user"


def test_no_window_uses_the_image_range(tmp_path: Path) -> None:
    stored = np.array([[10, 20, 30, 60]])
    img, facts = _one(tmp_path, stored, slope=0.5, intercept=5.0)
    assert img.tolist() == [[0, 51, 102, 255]] and facts.window is None and facts.window_source == "image-range"


def test_multiframe_gives_the_middle_frame(tmp_path: Path) -> None:
    frames = np.stack([np.full((4, 4), v) for v in (0, 500, 1000)])
    img, facts = _one(tmp_path, frames, window=(500.0, 1001.0))
    assert img.shape == (4, 4) and (img == _linear(500, 500.0, 1001.0)).all() and facts.multiframe


def test_folder_records_the_contract(tmp_path: Path) -> None:
    root = class_folder(tmp_path / "ct")
    write_dicom(root / "dark" / "odd.dcm", ramp(10, 10, 0, 400, seed=9), window=(300.0, 600.0), spacing=(0.7, 0.7))
    write_dicom(root / "bright" / "nested" / "deep.dcm", ramp(8, 8, 600, 1000, seed=7), window=(500.0, 1000.0),
                imager_spacing=(0.5, 0.5))
    ds = load_dataset(str(root), seed=1)
    assert ds.class_names == ["bright", "dark"] and sum(len(y) for _, y in ds.splits.values()) == 14
    assert ds.image_size == (8, 8) and ds.channels == 1 and "1 image(s) resized" in ds.split_note
    d = DicomDecoding.model_validate(ds.dicom)
    assert d.modality == "CT" and d.photometric_interpretations == ["MONOCHROME2"]
    assert d.window_source == "file" and d.window_varied and d.window_center is None
    assert d.pixel_spacing_mm == (0.5, 0.5) and d.pixel_spacing_varied and d.pixel_spacing_source == "mixed"
    contract = PreprocessContract(input_size=(8, 8), class_names=ds.class_names, dicom=ds.dicom)
    assert PreprocessContract.model_validate(contract.model_dump(mode="json")).dicom == d
    assert ds.summary()["dicom"]["modality"] == "CT"


def test_user_window_is_recorded_and_changes_the_fingerprint(tmp_path: Path) -> None:
    root = class_folder(tmp_path / "ct", per_class=3)
    own = load_dataset(str(root))
    user = load_dataset(str(root), dicom_window="-10,2000")
    assert own.dicom["window_source"] == "file" and own.dicom["window_center"] == 500.0  # type: ignore[index]
    assert user.dicom["window_source"] == "user" and user.dicom["window_width"] == 2000.0  # type: ignore[index]
    assert own.source_sha256 != user.source_sha256
    assert not np.array_equal(own.splits["train"][0], user.splits["train"][0])


def test_split_folders_and_dicomdir_ignored(tmp_path: Path) -> None:
    root = tmp_path / "split"
    class_folder(root / "train", per_class=5)
    class_folder(root / "test", per_class=2)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MediaStorageDirectoryStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    FileDataset("DICOMDIR", {}, file_meta=meta, preamble=b"\0" * 128).save_as(root / "train" / "dark" / "DICOMDIR")
    ds = load_dataset(str(root))
    assert len(ds.splits["test"][1]) == 4 and "official splits" in ds.split_note


def test_csv_by_path_and_by_uid(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    rows_path, rows_uid = ["path,label"], ["SOPInstanceUID,label"]
    for i in range(8):
        label = "pos" if i % 2 else "neg"
        uid = generate_uid()
        write_dicom(root / "files" / f"{i}.dcm", ramp(6, 6, 0, 500 + 400 * (i % 2), seed=i), modality="CR",
                    photometric="MONOCHROME1", uid=uid)
        rows_path.append(f"files/{i}.dcm,{label}")
        rows_uid.append(f"{uid},{label}")
    (root / "labels.csv").write_text("\n".join(rows_path) + "\n")
    by_path = load_dataset(str(root / "labels.csv"))
    assert by_path.class_names == ["neg", "pos"] and by_path.dicom["window_source"] == "image-range"  # type: ignore
    (root / "labels.csv").write_text("\n".join(rows_uid) + "\n")
    by_uid = load_dataset(str(root / "labels.csv"))
    assert np.array_equal(by_path.splits["test"][0], by_uid.splits["test"][0])
    assert by_uid.dicom["modality"] == "CR" and by_uid.dicom["photometric_interpretations"] == ["MONOCHROME1"]


@pytest.mark.parametrize(("text", "needle"), [
    ("path,label\nfiles/missing.dcm,neg\n", "line 2 points at 'files/missing.dcm', which does not exist"),
    ("file,label\nx.dcm,neg\n", "needs 'label' and exactly one of 'path' or 'SOPInstanceUID'"),
    ("path,label\n", "has no rows"),
    ("path,label\nfiles/a.dcm,\n", "line 2 lacks a label"),
    ("path,label\nfiles/a.dcm,x\nfiles/a.dcm,y\n", "lines 2 and 3 name the same file"),
    ("SOPInstanceUID,label\n1.2.3.4,x\n", "no DICOM file under 'c' has SOPInstanceUID 1.2.3.4"),
])
def test_csv_errors(tmp_path: Path, text: str, needle: str) -> None:
    write_dicom(tmp_path / "c" / "files" / "a.dcm", ramp(4, 4))
    (tmp_path / "c" / "labels.csv").write_text(text)
    with pytest.raises(EdgepruneError) as err:
        check_source(str(tmp_path / "c" / "labels.csv"))
    assert needle in err.value.problem and "\n" not in str(err.value)


def _bad_folder(tmp_path: Path, kind: str) -> Path:
    root = class_folder(tmp_path / kind, per_class=2)
    bad = root / "bright" / "bad.dcm"
    if kind == "jpegls":
        write_dicom(bad, np.zeros((8, 8)), transfer_syntax=JPEGLSLossless, raw_pixel_bytes=encapsulate([b"\xff\xd8"]))
    elif kind == "jpeg2000":
        write_dicom(bad, np.zeros((8, 8)), transfer_syntax=JPEG2000Lossless,
                    raw_pixel_bytes=encapsulate([b"\xff\x4f\xff\x51" + b"junk" * 8]))
    elif kind == "mixed":
        for i in range(2):
            write_dicom(root / "dark" / f"mr{i}.dcm", ramp(8, 8), modality="MR")
    elif kind == "nopixels":
        write_dicom(bad, None, modality="CT")
    elif kind == "notdicom":
        (root / "dark" / "notes.txt").write_text("not an image")
    elif kind == "empty":
        (root / "third").mkdir()
    return root


BAD = {
    "jpegls": ("JPEG-LS Lossless Image Compression (1.2.840.10008.1.2.4.80), which no installed decoder reads",
               "pip install pylibjpeg pylibjpeg-libjpeg"),
    "jpeg2000": ("'bad.dcm' (JPEG 2000 Image Compression (Lossless Only) (1.2.840.10008.1.2.4.90)) cannot be decoded",
                 "re-save the files uncompressed"),
    "mixed": ("mixes modalities: CT (4 files), MR (2 files)", "build one dataset per modality"),
    "nopixels": ("'bright/bad.dcm' has no pixel data", "remove the file"),
    "notdicom": ("'dark/notes.txt' in DICOM data 'notdicom' is not a readable DICOM file", "remove it"),
    "empty": ("class folder(s) third in 'empty' hold no DICOM files", "delete the empty folders"),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_dicom_is_refused_by_the_preflight_and_the_loader(tmp_path: Path, kind: str) -> None:
    root = _bad_folder(tmp_path, kind)
    problem, fix = BAD[kind]
    for call in (lambda: check_source(str(root)), lambda: load_dataset(str(root))):
        with pytest.raises(EdgepruneError) as err:
            call()
        assert problem in err.value.problem and fix in err.value.fix, str(err.value)


@pytest.mark.parametrize("text", ["40", "40,0", "a,b", "1,2,3", "nan,5"])
def test_bad_window_option(text: str) -> None:
    with pytest.raises(EdgepruneError, match="is not CENTER,WIDTH"):
        parse_window(text)


def test_window_option_needs_dicom(tmp_path: Path) -> None:
    assert parse_window(" -600 , 1500 ") == (-600.0, 1500.0)
    with pytest.raises(EdgepruneError, match="data is not DICOM"):
        check_source("embedded", "40,400")


def test_rgb_file_keeps_its_colours_unwindowed(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "rgb.dcm", np.zeros((4, 4)), modality="XC")
    ds = dcmread(path)
    rgb = np.random.default_rng(0).integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelData = rgb.tobytes()
    ds.save_as(path)
    img, facts = decode_file(path, tmp_path, None)
    assert np.array_equal(img, rgb) and facts.window_source == "none" and facts.window is None
