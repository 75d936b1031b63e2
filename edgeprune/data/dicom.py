"""DICOM data: a folder of class sub-folders of DICOM files, or a CSV that labels DICOM files, read with pydicom.

Every file becomes one uint8 image the way a viewer shows it: stored values times Rescale Slope plus Rescale
Intercept, then the DICOM linear window (the user's ``--dicom-window C,W``, else the file's first Window
Center/Width, else the image's own min..max) mapped to 0..255, MONOCHROME1 inverted afterwards. A multi-frame
file gives its middle frame. How the pixels were decoded is returned as :class:`edgeprune.contract.DicomDecoding`
fields, which the preprocessing contract carries to every artifact and bundle.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.contract import DicomDecoding
from edgeprune.data.dataset import ImageDataset
from edgeprune.data.folder import (
    IMAGE_SUFFIXES,
    _natural_key,
    assemble,
    check_fractions,
    find_layout,
    labelled_files,
)
from edgeprune.errors import EdgepruneError

DICOM_SUFFIXES = {".dcm", ".dicom", ".dic"}
IGNORED_NAMES = {"DICOMDIR"}  # the media directory file of a DICOM CD: an index, not an image
CSV_LABEL = "label"
CSV_KEYS = ("path", "SOPInstanceUID")
_MAGIC_OFFSET = 128
_MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
_COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "YBR_PARTIAL_420")

# transfer syntax UID -> the pip packages with which pydicom decodes it
_JPEG, _J2K = "pylibjpeg pylibjpeg-libjpeg", "pylibjpeg pylibjpeg-openjpeg"
_DECODERS = {
    **{f"1.2.840.10008.1.2.4.{n}": _JPEG for n in (50, 51, 57, 70, 80, 81)},
    **{f"1.2.840.10008.1.2.4.{n}": _J2K for n in (90, 91, 201, 202, 203)},
    "1.2.840.10008.1.2.5": "pylibjpeg pylibjpeg-rle",
}
_UNCOMPRESS_HINT = "or re-save the files uncompressed (e.g. `gdcmconv --raw in.dcm out.dcm`)"


@dataclass(frozen=True)
class _Facts:
    """What decoding one file used, to be summarised into the contract."""

    modality: str
    photometric: str
    window: tuple[float, float] | None
    window_source: str  # user | file | image-range | none
    spacing: tuple[float, float] | None
    spacing_source: str  # PixelSpacing | ImagerPixelSpacing | absent
    multiframe: bool


def parse_window(text: str) -> tuple[float, float]:
    """``"C,W"`` -> (center, width); the width must be at least 1 (DICOM's rule)."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        center, width = (float(p) for p in parts) if len(parts) == 2 else (None, None)
    except ValueError:
        center, width = None, None
    if center is None or width is None or not np.isfinite([center, width]).all() or width < 1:
        raise EdgepruneError(f"--dicom-window '{text}' is not CENTER,WIDTH with a width of at least 1",
                             "give two numbers, e.g. --dicom-window 40,400 (CT soft tissue) or -600,1500 (lung)")
    return center, width


def looks_like_dicom(path: Path) -> bool:
    """A DICOM suffix, or the 'DICM' marker after the 128-byte preamble."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with path.open("rb") as fh:
            head = fh.read(_MAGIC_OFFSET + 4)
    except OSError:
        return False
    return head[_MAGIC_OFFSET:] == b"DICM"


def _candidate_files(folder: Path, skip_suffixes: frozenset[str] = frozenset()) -> list[Path]:
    """Every non-hidden file under ``folder`` (recursively, natural order), DICOMDIR left out."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found += [Path(dirpath, f) for f in filenames
                  if not f.startswith(".") and f.upper() not in IGNORED_NAMES
                  and Path(f).suffix.lower() not in skip_suffixes]
    return sorted(found, key=lambda p: _natural_key(p.relative_to(folder).as_posix()))


def is_dicom_folder(root: Path) -> bool:
    """True when any file under ``root`` (ordinary image files aside) is a DICOM file."""
    return any(looks_like_dicom(p) for p in _candidate_files(root, frozenset(IMAGE_SUFFIXES)))


def _read(path: Path, root: Path) -> Any:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path)
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError) as exc:
        where = os.path.relpath(path, root)
        raise EdgepruneError(f"'{where}' in DICOM data '{root.name}' is not a readable DICOM file "
                             f"({type(exc).__name__})",
                             "remove it or move it out of the dataset folder (DICOMDIR files are ignored)") from exc


def _decode_error(path: Path, ts: Any, exc: Exception) -> EdgepruneError:
    """The one-line error for pixel data pydicom could not decode, naming the transfer syntax and the fix."""
    from pydicom.pixels import get_decoder

    name = f"{getattr(ts, 'name', ts)} ({ts})" if ts else "an unknown transfer syntax"
    try:
        available = get_decoder(ts).is_available
    except (NotImplementedError, ValueError, TypeError):
        available = False
    if getattr(ts, "is_compressed", False) and not available:
        package = _DECODERS.get(str(ts), "pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg")
        return EdgepruneError(f"'{path.name}' uses the compressed transfer syntax {name}, which no installed "
                              "decoder reads", f"pip install {package}, {_UNCOMPRESS_HINT}")
    detail = " ".join(str(exc).split())[:200] or type(exc).__name__
    other = (f"pip install {_DECODERS[str(ts)]} for another decoder, "
             if getattr(ts, "is_compressed", False) and str(ts) in _DECODERS else "")
    return EdgepruneError(f"the pixel data of '{path.name}' ({name}) cannot be decoded: {detail}",
                          f"{other}{_UNCOMPRESS_HINT} or check the file with `dcmdump`")


def _first(value: Any) -> float | None:
    """A float from a (possibly multi-valued) DICOM number; None when absent or unusable."""
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        value = value[0] if len(value) else None
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def window_to_uint8(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM linear VOI window (PS3.3 C.11.2.1.2.1) onto 0..255 as float."""
    if width <= 1:
        return np.where(values > center - 0.5, 255.0, 0.0)
    return np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0) * 255.0


def _spacing(ds: Any) -> tuple[tuple[float, float] | None, str]:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        if value is not None and len(value) == 2:
            try:
                return (round(float(value[0]), 6), round(float(value[1]), 6)), keyword
            except (TypeError, ValueError):
                continue
    return None, "absent"


def _check_header(ds: Any, path: Path, root: Path) -> None:
    """Refuse, from the header alone, a file without an image, an unknown colour model or an undecodable codec."""
    from pydicom.pixels import get_decoder

    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        what = f"a DICOM {ds.get('Modality', '')} object".replace("  ", " ")
        raise EdgepruneError(f"'{os.path.relpath(path, root)}' has no pixel data ({what} without an image, e.g. a "
                             "report or structured document)", "remove the file from the dataset folder")
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if photometric not in _MONOCHROME + _COLOUR:
        raise EdgepruneError(f"'{path.name}' has photometric interpretation '{photometric or 'none'}', which edgeprune "
                             "does not decode", "convert the file to MONOCHROME2 or RGB")
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if ts is not None and ts.is_compressed:
        try:
            available = get_decoder(ts).is_available
        except (NotImplementedError, ValueError):
            available = False
        if not available:
            raise _decode_error(path, ts, RuntimeError("no decoder"))


def decode_file(path: Path, root: Path, window: tuple[float, float] | None) -> tuple[np.ndarray, _Facts]:
    """One DICOM file -> uint8 image ((H,W) grey or (H,W,3) colour) and what decoding used."""
    from pydicom.pixels import pixel_array

    ds = _read(path, root)
    _check_header(ds, path, root)
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    frames = int(_first(ds.get("NumberOfFrames")) or 1)
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    try:
        arr = pixel_array(ds, index=frames // 2 if frames > 1 else None)
    except Exception as exc:  # pydicom raises several types for undecodable data; all mean the same to a user
        raise _decode_error(path, ts, exc) from exc
    spacing, spacing_source = _spacing(ds)
    modality = str(ds.get("Modality", "")).strip().upper() or "unknown"
    if photometric in _COLOUR:
        top = float(2 ** int(ds.get("BitsStored", 8)) - 1)
        img = np.clip(np.rint(arr.astype(np.float64) * 255.0 / top), 0, 255).astype(np.uint8)
        return img, _Facts(modality, photometric, None, "none", spacing, spacing_source, frames > 1)
    slope = _first(ds.get("RescaleSlope"))
    intercept = _first(ds.get("RescaleIntercept"))
    values = arr.astype(np.float64) * (1.0 if slope is None else slope) + (intercept or 0.0)
    used, source = window, "user"
    if used is None:
        center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
        used, source = ((center, width), "file") if center is not None and width is not None and width >= 1 \
            else (None, "image-range")
    if used is not None:
        out = window_to_uint8(values, *used)
    else:
        lo, hi = float(values.min()), float(values.max())
        out = (values - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(values)
    if photometric == "MONOCHROME1":
        out = 255.0 - out
    img = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return img, _Facts(modality, photometric, used, source, spacing, spacing_source, frames > 1)


def summarise(facts: list[_Facts], root: Path) -> dict[str, Any]:
    """The contract's DicomDecoding fields for a whole dataset; refuses a mix of modalities."""
    modalities = Counter(f.modality for f in facts)
    _check_modalities(modalities, root)
    grey = [f for f in facts if f.window_source != "none"]
    sources = {f.window_source for f in grey}
    windows = {f.window for f in grey if f.window is not None}
    if not grey:
        window_source = "none"
    elif len(sources) == 1:
        window_source = sources.pop()
    else:
        window_source = "file+image-range"
    single = next(iter(windows)) if len(windows) == 1 and window_source in ("user", "file") else None
    spacings = Counter(f.spacing for f in facts if f.spacing is not None)
    spacing_sources = {f.spacing_source for f in facts if f.spacing is not None}
    decoding = DicomDecoding(
        modality=next(iter(modalities)),
        photometric_interpretations=sorted({f.photometric for f in facts}),
        window_source=window_source,  # type: ignore[arg-type]
        window_center=single[0] if single else None, window_width=single[1] if single else None,
        window_varied=len(windows) > 1 or window_source == "file+image-range",
        pixel_spacing_mm=spacings.most_common(1)[0][0] if spacings else None,
        pixel_spacing_source=(spacing_sources.pop() if len(spacing_sources) == 1  # type: ignore[arg-type]
                              else "mixed" if spacing_sources else "absent"),
        pixel_spacing_varied=len(set(f.spacing for f in facts)) > 1,
        multiframe_files=sum(f.multiframe for f in facts),
    )
    return decoding.model_dump(mode="json")


def _fingerprint(base: Path, files: list[Path], extra: bytes) -> str:
    h = hashlib.sha256(extra)
    for p in sorted(files, key=lambda q: os.path.relpath(q, base)):
        rel = Path(os.path.relpath(p, base)).as_posix().encode()
        data = p.read_bytes()
        h.update(len(rel).to_bytes(8, "little") + rel + len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


def _window_bytes(window: tuple[float, float] | None) -> bytes:
    return f"dicom-window={window}".encode() if window else b""


def _dataset(base: Path, name: str, class_names: list[str], files: list[tuple[str, int, Path]],
             split_dirs: dict[str, Path], window: tuple[float, float] | None, extra: bytes, *, seed: int,
             val_fraction: float, test_fraction: float, image_size: tuple[int, int] | None) -> ImageDataset:
    decoded = [decode_file(p, base, window) for _, _, p in files]
    dicom = summarise([f for _, f in decoded], base)
    frames = dicom["multiframe_files"]
    notes = [f"{frames} multi-frame file(s): middle frame taken"] if frames else []
    splits, split_note = assemble([a for a, _ in decoded], files, split_dirs, seed=seed, val_fraction=val_fraction,
                                  test_fraction=test_fraction, image_size=image_size, notes=notes)
    return ImageDataset(name=name, class_names=class_names, splits=splits, source=str(base), split_note=split_note,
                        source_sha256=_fingerprint(base, [p for _, _, p in files], extra + _window_bytes(window)),
                        dicom=dicom)


def load_dicom_folder(root: str | Path, *, seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.2,
                      image_size: tuple[int, int] | None = None, window: tuple[float, float] | None = None,
                      ) -> ImageDataset:
    """root/<class>/**/file or root/{train,val,test}/<class>/**/file, every file DICOM (DICOMDIR ignored)."""
    root = Path(root)
    check_fractions(val_fraction, test_fraction)
    per_split, split_dirs = find_layout(root, _candidate_files, "DICOM files")
    class_names, files = labelled_files(per_split)
    return _dataset(root, root.resolve().name, class_names, files, split_dirs, window, b"", seed=seed,
                    val_fraction=val_fraction, test_fraction=test_fraction, image_size=image_size)


def _csv_rows(csv_path: Path) -> tuple[str, list[tuple[int, str, str]]]:
    """(key column, [(line, key, label)]) of a labels CSV; the header names columns case-insensitively."""
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            body = [(i, row) for i, row in enumerate(reader, start=2) if any(c.strip() for c in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise EdgepruneError(f"cannot read labels CSV '{csv_path}' ({exc})", "save it as UTF-8 comma-separated text") \
            from exc
    lower = {h.lower(): i for i, h in enumerate(header)}
    keys = [k for k in CSV_KEYS if k.lower() in lower]
    if CSV_LABEL not in lower or len(keys) != 1:
        raise EdgepruneError(f"labels CSV '{csv_path.name}' has columns {header or 'none'}; it needs 'label' and "
                             "exactly one of 'path' or 'SOPInstanceUID'",
                             "write a header row such as `path,label` (paths relative to the CSV's folder)")
    if not body:
        raise EdgepruneError(f"labels CSV '{csv_path.name}' has no rows", "add one row per DICOM file")
    k, lab = lower[keys[0].lower()], lower[CSV_LABEL]
    rows = []
    for line, row in body:
        key = row[k].strip() if k < len(row) else ""
        label = row[lab].strip() if lab < len(row) else ""
        if not key or not label:
            raise EdgepruneError(f"labels CSV '{csv_path.name}' line {line} lacks a {keys[0] if not key else 'label'}",
                                 "fill in the cell or delete the line")
        rows.append((line, key, label))
    return keys[0], rows


def _uid_index(base: Path, csv_path: Path) -> dict[str, Path]:
    import pydicom

    index: dict[str, Path] = {}
    for p in _candidate_files(base, frozenset({".csv"})):
        try:
            uid = str(pydicom.dcmread(p, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
                      .get("SOPInstanceUID", ""))
        except Exception as exc:  # any parse failure: the file is not DICOM
            raise EdgepruneError(f"'{os.path.relpath(p, base)}' beside '{csv_path.name}' is not a DICOM file "
                                 f"({type(exc).__name__})", "move it out of the CSV's folder") from exc
        if uid in index:
            raise EdgepruneError(f"SOPInstanceUID {uid} belongs to both '{index[uid].name}' and '{p.name}'",
                                 "remove the duplicate file")
        index[uid] = p
    return index


def load_dicom_csv(csv_path: str | Path, *, seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.2,
                   image_size: tuple[int, int] | None = None, window: tuple[float, float] | None = None,
                   ) -> ImageDataset:
    """A CSV with a header and columns ``path,label`` (path relative to the CSV's folder, or absolute) or
    ``SOPInstanceUID,label`` (matched against the DICOM files under the CSV's folder); splits are carved
    stratified by label, like an unsplit folder."""
    csv_path = Path(csv_path)
    check_fractions(val_fraction, test_fraction)
    class_names, files = _csv_files(csv_path)
    base = csv_path.parent
    return _dataset(base, base.resolve().name, class_names, files, {}, window, csv_path.read_bytes(), seed=seed,
                    val_fraction=val_fraction, test_fraction=test_fraction, image_size=image_size)


def _csv_files(csv_path: Path) -> tuple[list[str], list[tuple[str, int, Path]]]:
    """Class names and ("all", label, path) for every row of a labels CSV; every row must name a real file."""
    base = csv_path.parent
    key, rows = _csv_rows(csv_path)
    index = _uid_index(base, csv_path) if key == "SOPInstanceUID" else {}
    labelled: list[tuple[Path, str]] = []
    seen: dict[Path, int] = {}
    for line, value, label in rows:
        if key == "path":
            path = Path(value).expanduser()
            path = path if path.is_absolute() else base / path
            if not path.is_file():
                raise EdgepruneError(f"labels CSV '{csv_path.name}' line {line} points at '{value}', which does not "
                                     "exist", "fix the path (relative to the CSV's folder) or delete the line")
        elif value in index:
            path = index[value]
        else:
            raise EdgepruneError(f"labels CSV '{csv_path.name}' line {line}: no DICOM file under '{base.name}' has "
                                 f"SOPInstanceUID {value}", "fix the UID or delete the line")
        if path.resolve() in seen:
            raise EdgepruneError(f"labels CSV '{csv_path.name}' lines {seen[path.resolve()]} and {line} name the "
                                 "same file", "keep one line per file")
        seen[path.resolve()] = line
        labelled.append((path, label))
    class_names = sorted({label for _, label in labelled}, key=_natural_key)
    idx = {c: i for i, c in enumerate(class_names)}
    return class_names, [("all", idx[label], path) for path, label in labelled]


def check_dicom(source: Path) -> None:
    """Pre-flight of a DICOM folder or labels CSV from the headers only (pixel data is not decoded): layout,
    CSV rows, non-DICOM files, missing pixel data, codecs without a decoder and mixed modalities."""
    import pydicom

    if source.suffix.lower() == ".csv":
        base, files = source.parent, _csv_files(source)[1]
    else:
        base, files = source, labelled_files(find_layout(source, _candidate_files, "DICOM files")[0])[1]
    modalities: Counter[str] = Counter()
    tried: set[str] = set()  # one trial decode per compressed transfer syntax: a decoder may still refuse it
    for _, _, path in files:
        try:
            ds = pydicom.dcmread(path, defer_size=1024)
        except Exception as exc:  # any parse failure means the same thing: not a DICOM file
            raise EdgepruneError(f"'{os.path.relpath(path, base)}' in DICOM data '{base.name}' is not a readable "
                                 f"DICOM file ({type(exc).__name__})",
                                 "remove it or move it out of the dataset folder (DICOMDIR files are ignored)") from exc
        _check_header(ds, path, base)
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        if ts is not None and ts.is_compressed and str(ts) not in tried:
            tried.add(str(ts))
            decode_file(path, base, None)
        modalities[str(ds.get("Modality", "")).strip().upper() or "unknown"] += 1
    _check_modalities(modalities, base)


def _check_modalities(modalities: Counter[str], root: Path) -> None:
    if len(modalities) > 1:
        mix = ", ".join(f"{m} ({n} files)" for m, n in modalities.most_common())
        raise EdgepruneError(f"DICOM data '{root.name}' mixes modalities: {mix}",
                             "build one dataset per modality (move the other files out)")
