"""The one layout rule for image tensors, shared by every format's reader.

A 4-D image input is NCHW or NHWC. What the exporter recorded in the file's metadata wins; without it the
layout is read from the shape when exactly one of the two candidate axes looks like a channel axis (1, 3 or
4 wide); otherwise it is left empty and the runtime decides from the batch it is given.
"""

from __future__ import annotations

from collections.abc import Sequence

LAYOUTS = ("NCHW", "NHWC")
CHANNEL_COUNTS = (1, 3, 4)


def image_layout(shape: Sequence[int], declared: str | None = None) -> str:
    """NCHW / NHWC of a 4-D image tensor: the declared layout, else the unambiguous channel axis, else ""."""
    if len(shape) != 4:
        return ""
    if declared in LAYOUTS:
        return str(declared)
    first, last = shape[1] in CHANNEL_COUNTS, shape[3] in CHANNEL_COUNTS
    if first and not last:
        return "NCHW"
    if last and not first:
        return "NHWC"
    return ""


def declared_layout(metadata: dict | None) -> str:
    """The io_layout an edgeprune export recorded in its embedded metadata ("" when absent)."""
    return str(((metadata or {}).get("export") or {}).get("io_layout", ""))
