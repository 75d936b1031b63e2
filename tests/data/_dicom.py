"""Write real DICOM files with pydicom for the DICOM loader tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid


def write_dicom(path: Path, pixels: np.ndarray | None, *, modality: str = "CT", photometric: str = "MONOCHROME2",
                slope: float | None = None, intercept: float | None = None,
                window: tuple[Any, Any] | None = None, spacing: tuple[float, float] | None = None,
                imager_spacing: tuple[float, float] | None = None, signed: bool = False,
                transfer_syntax: UID = ExplicitVRLittleEndian, raw_pixel_bytes: bytes | None = None,
                uid: str | None = None) -> Path:
    """One single- or multi-frame (frames first) DICOM file; ``pixels`` None writes no PixelData at all."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = uid or generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.PatientID = "TEST"
    if pixels is not None:
        arr = np.asarray(pixels)
        frames = arr.shape[0] if arr.ndim == 3 else 1
        if frames > 1:
            ds.NumberOfFrames = frames
        ds.Rows, ds.Columns = arr.shape[-2:]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = photometric
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1 if signed else 0
        stored = arr.astype(np.int16 if signed else np.uint16)
        ds.PixelData = raw_pixel_bytes if raw_pixel_bytes is not None else stored.tobytes()
    if slope is not None:
        ds.RescaleSlope = slope
    if intercept is not None:
        ds.RescaleIntercept = intercept
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if spacing is not None:
        ds.PixelSpacing = list(spacing)
    if imager_spacing is not None:
        ds.ImagerPixelSpacing = list(imager_spacing)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def ramp(h: int = 8, w: int = 8, lo: int = 0, hi: int = 1000, seed: int = 0) -> np.ndarray:
    """A noisy ramp of stored values (distinct per seed, so classes are learnable by brightness)."""
    base = np.linspace(lo, hi, h * w).reshape(h, w)
    noise = np.random.default_rng(seed).integers(0, max(1, (hi - lo) // 20), size=(h, w))
    return (base + noise).astype(np.int64)


def class_folder(root: Path, per_class: int = 6, size: int = 8, modality: str = "CT",
                 window: tuple[float, float] | None = (500.0, 1000.0)) -> Path:
    """root/{dark,bright}/*.dcm: two classes that differ in brightness, all windowed the same way."""
    for c, (lo, hi) in enumerate(((0, 400), (600, 1000))):
        name = ("dark", "bright")[c]
        for i in range(per_class):
            write_dicom(root / name / f"img{i}.dcm", ramp(size, size, lo, hi, seed=c * 100 + i), modality=modality,
                        window=window, spacing=(0.5, 0.5))
    return root
