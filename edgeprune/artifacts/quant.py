"""The affine integer <-> float mapping of a quantized tensor, as its TensorInfo describes it."""

from __future__ import annotations

import numpy as np

from edgeprune.errors import EdgepruneError
from edgeprune.schemas import TensorInfo

QUANTIZED_DTYPES = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16}


def quantize(x: np.ndarray, info: TensorInfo) -> np.ndarray:
    """float -> integer tensor with the tensor's affine parameters (round half away from zero, saturate)."""
    dtype = QUANTIZED_DTYPES[info.dtype]
    if not info.quant_scale:
        raise EdgepruneError(f"tensor '{info.name}' is {info.dtype} but has no scale", "re-export the model")
    v = x.astype(np.float32) / np.float32(info.quant_scale)
    q = np.sign(v) * np.floor(np.abs(v) + 0.5) + (info.quant_zero_point or 0)
    lim = np.iinfo(dtype)
    return np.clip(q, lim.min, lim.max).astype(dtype)


def dequantize(q: np.ndarray, info: TensorInfo) -> np.ndarray:
    """integer tensor -> float32 with the tensor's affine parameters."""
    if not info.quant_scale:
        raise EdgepruneError(f"tensor '{info.name}' is {info.dtype} but has no scale", "re-export the model")
    return ((q.astype(np.float32) - (info.quant_zero_point or 0)) * np.float32(info.quant_scale)).astype(
        np.float32
    )
