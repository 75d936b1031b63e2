"""The preprocessing contract: how raw pixels become model input. It travels with every artifact."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer


class DicomDecoding(BaseModel):
    """How DICOM pixel data became the uint8 images the contract starts from (an app must decode the same way)."""

    model_config = ConfigDict(extra="forbid")

    modality: str = Field(description="the one Modality (0008,0060) of every file")
    photometric_interpretations: list[str] = Field(description="PhotometricInterpretation values seen")
    rescale: str = Field(default="value = stored * RescaleSlope + RescaleIntercept (per file; 1 and 0 when absent)")
    window_source: Literal["user", "file", "image-range", "file+image-range", "none"] = Field(
        description="user: the --dicom-window option; file: each file's first Window Center/Width; image-range: "
                    "each image's own min..max; none: colour images, not windowed")
    window_center: float | None = Field(None, description="the window used when one applies to every image")
    window_width: float | None = None
    window_varied: bool = Field(False, description="files carried different windows (each used its own)")
    window_function: str = Field(default="DICOM LINEAR (PS3.3 C.11.2.1.2.1) to 0..255; MONOCHROME1 then inverted")
    pixel_spacing_mm: tuple[float, float] | None = Field(
        None, description="(row, column) spacing most files have, as stored (before any resize)")
    pixel_spacing_source: Literal["PixelSpacing", "ImagerPixelSpacing", "mixed", "absent"] = "absent"
    pixel_spacing_varied: bool = False
    multiframe: str = Field(default="middle frame (index NumberOfFrames // 2)")
    multiframe_files: int = 0


class PreprocessContract(BaseModel):
    """Everything an app needs to feed the model exactly as it was trained and verified."""

    model_config = ConfigDict(extra="forbid")

    input_size: tuple[int, int] = Field(description="model input (height, width) in pixels")
    in_channels: int = 3
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    dtype: str = "float32"
    scale: float = Field(1.0 / 255.0, description="multiply uint8 pixels by this first")
    mean: list[float] = Field(default_factory=lambda: [0.5, 0.5, 0.5])
    std: list[float] = Field(default_factory=lambda: [0.5, 0.5, 0.5])
    channel_order: Literal["RGB", "BGR", "GRAY"] = "RGB"
    source_channels: int = Field(3, description="channels of the stored images (1 = grayscale)")
    gray_to_rgb: bool = Field(False, description="replicate a grayscale image into 3 channels")
    resize: Literal["bilinear", "nearest", "none"] = "bilinear"
    resize_align_corners: bool = False
    class_names: list[str] = Field(default_factory=list)
    dicom: DicomDecoding | None = Field(None, description="set when the images were decoded from DICOM files")

    @model_serializer(mode="wrap")
    def _without_absent_dicom(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Non-DICOM contracts serialise exactly as before the field existed (no "dicom": null)."""
        out = handler(self)
        if out.get("dicom", 0) is None:
            del out["dicom"]
        return out

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def apply(self, images: np.ndarray) -> np.ndarray:
        """uint8 images (N,H,W) or (N,H,W,C) -> normalised float32 (N,C,H,W)."""
        import torch
        import torch.nn.functional as F

        x = np.asarray(images)
        if x.ndim == 3:
            x = x[..., None]
        if x.ndim != 4:
            raise ValueError(f"expected images of shape (N,H,W) or (N,H,W,C), got {images.shape}")
        t = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).float() * self.scale
        if t.shape[1] == 1 and self.in_channels == 3:
            t = t.expand(-1, 3, -1, -1)
        elif t.shape[1] == 3 and self.in_channels == 1:
            t = (t * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        if self.channel_order == "BGR":
            t = t.flip(1)
        if self.resize != "none" and tuple(t.shape[-2:]) != tuple(self.input_size):
            if self.resize == "bilinear":
                t = F.interpolate(t, size=self.input_size, mode="bilinear", align_corners=self.resize_align_corners)
            else:
                t = F.interpolate(t, size=self.input_size, mode="nearest")
        mean = torch.tensor(self.mean[: t.shape[1]], dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(self.std[: t.shape[1]], dtype=torch.float32).view(1, -1, 1, 1)
        t = (t - mean) / std
        return t.contiguous().numpy().astype(np.float32)
