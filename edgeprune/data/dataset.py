"""The dataset type every loader returns: images and labels per split, and where they came from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeprune.errors import EdgepruneError

SPLITS = ("train", "val", "test")


@dataclass
class ImageDataset:
    """Images (uint8, (N,H,W) or (N,H,W,3)) and int64 labels per split, plus where they came from."""

    name: str
    class_names: list[str]
    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    source: str
    source_sha256: str
    split_note: str
    dicom: dict[str, Any] | None = None  # edgeprune.contract.DicomDecoding fields when decoded from DICOM

    @property
    def channels(self) -> int:
        images = self._split("train")[0]
        return 1 if images.ndim == 3 else int(images.shape[-1])

    @property
    def image_size(self) -> tuple[int, int]:
        images = self._split("train")[0]
        return int(images.shape[1]), int(images.shape[2])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_counts(self, split: str) -> list[int]:
        labels = self._split(split)[1]
        return np.bincount(labels, minlength=len(self.class_names)).astype(int).tolist()

    def summary(self) -> dict[str, Any]:
        """Plain-JSON description for manifests and reports (no pixel data)."""
        return {
            "name": self.name,
            "source": self.source,
            "source_sha256": self.source_sha256,
            "split_note": self.split_note,
            "class_names": list(self.class_names),
            "image_size": list(self.image_size),
            "channels": self.channels,
            "class_counts": {s: self.class_counts(s) for s in self.splits},
            **({"dicom": self.dicom} if self.dicom else {}),
        }

    def _split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        if split not in self.splits:
            raise EdgepruneError(f"dataset '{self.name}' has no split '{split}'",
                                 f"use one of: {', '.join(self.splits)}")
        return self.splits[split]
