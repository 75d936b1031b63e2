"""Embed / read a JSON blob in a .tflite file's flatbuffer ``metadata`` list (entry name "edgeprune").

The TFLite schema lets a model carry named byte buffers (``Model.metadata[i] -> buffers[j]``); runtimes
ignore names they do not know, so the model loads and runs unchanged. The schema bindings used here are the
ones shipped with the runtime (``ai_edge_litert.schema_py_generated``), so no extra package is needed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.artifacts.tflite_metadata import (  # the readers live below export and runtimes
    METADATA_NAME,
    tflite_schema,
)

OFFICIAL_METADATA_NAME = "TFLITE_METADATA"  # the entry the TFLite metadata tools read
LABELS_FILE = "labels.txt"
_FILE_IDENTIFIER = b"TFL3"
_BUFFER_ALIGN = 16  # the TFLite schema asks for 16-byte aligned buffer data (force_align: 16)


def _aligned_buffer_type(schema):
    """A BufferT whose data vector is 16-byte aligned (the generated Python packer only aligns to 1)."""

    class AlignedBufferT(schema.BufferT):
        def Pack(self, builder):  # noqa: N802 - flatbuffers naming
            data_off = None
            if self.data is not None:
                raw = np.asarray(self.data, dtype=np.uint8).tobytes()
                builder.StartVector(1, len(raw), _BUFFER_ALIGN)
                builder.head -= len(raw)
                builder.Bytes[builder.head : builder.head + len(raw)] = raw
                data_off = builder.EndVector()
            schema.BufferStart(builder)
            if data_off is not None:
                schema.BufferAddData(builder, data_off)
            schema.BufferAddOffset(builder, self.offset)
            schema.BufferAddSize(builder, self.size)
            return schema.BufferEnd(builder)

    return AlignedBufferT


def embed_tflite_metadata(path: str | Path, metadata: dict[str, Any], name: str = METADATA_NAME) -> None:
    """Rewrite ``path`` in place with ``metadata`` (JSON) stored under ``name``, replacing an older entry."""
    payload = json.dumps(metadata, sort_keys=True, default=str).encode("utf-8")
    embed_tflite_buffer(path, name, payload)


def embed_tflite_buffer(path: str | Path, name: str, payload: bytes) -> None:
    """Rewrite ``path`` in place with the bytes ``payload`` as metadata entry ``name`` (an older one is replaced).

    Anything appended after the flatbuffer (e.g. a zip of associated files) is dropped: add that last."""
    import flatbuffers
    from ai_edge_litert.tools import flatbuffer_utils

    schema = tflite_schema()
    path = Path(path)
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(path.read_bytes()))
    aligned = _aligned_buffer_type(schema)
    model.buffers = [aligned(data=b.data, offset=b.offset, size=b.size) for b in model.buffers]
    kept = [m for m in (model.metadata or []) if (m.name or b"").decode() != name]
    model.buffers.append(aligned(data=np.frombuffer(payload, dtype=np.uint8)))
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    model.metadata = kept + [entry]
    builder = flatbuffers.Builder(max(1024, path.stat().st_size + len(payload) + 4096))
    builder.Finish(model.Pack(builder), file_identifier=_FILE_IDENTIFIER)
    path.write_bytes(bytes(builder.Output()))


def add_official_metadata(path: str | Path, contract: Any, manifest: Any, artifact_name: str) -> None:
    """Add the official TFLite Metadata (normalization, label file, name/version/description) to ``path``.

    Written last, after the project's own "edgeprune" entry, because the label file rides in a zip appended
    to the model (the layout the TFLite metadata tools and the Android MetadataExtractor read)."""
    from edgeprune import __version__

    labels = "\n".join(contract.class_names) + "\n"
    scale = float(contract.scale) or 1.0
    dataset = (getattr(manifest, "data", None) or {}).get("name", "unknown")
    meta = OfficialMetadata(
        name=f"{artifact_name} ({getattr(manifest, 'run_id', '')})".strip(),
        version=f"edgeprune {__version__}",
        description=(f"Image classifier pruned and converted by edgeprune from the '{dataset}' dataset "
                     f"({len(contract.class_names)} classes). Research use only, not a medical device. "
                     f"Input {contract.input_size[0]}x{contract.input_size[1]} {contract.channel_order} "
                     f"{contract.layout}; pixels are normalized as (p - mean) / std with mean/std given for "
                     "0-255 pixel values."),
        mean=[float(m) / scale for m in contract.mean], std=[float(v) / scale for v in contract.std],
        color={"RGB": 1, "GRAY": 2}.get("GRAY" if contract.in_channels == 1 else contract.channel_order, 0),
    )
    embed_tflite_buffer(path, OFFICIAL_METADATA_NAME, build_official_metadata(meta))
    attach_associated_files(path, {LABELS_FILE: labels.encode("utf-8")})


@dataclass
class OfficialMetadata:
    """What goes into the official ModelMetadata of an image classifier (one input image, one score output)."""

    name: str
    version: str
    description: str
    mean: list[float]  # per channel, for 0-255 pixel values
    std: list[float]
    color: int  # ColorSpaceType: 0 unknown, 1 RGB, 2 GRAYSCALE
    author: str = "edgeprune"
    labels_file: str = LABELS_FILE
    min_parser_version: str = "1.0.0"


# Field slots and enum values of the official metadata_schema.fbs (tensorflow/tflite-support, file id "M001").
_MD_FILE_ID = b"M001"
_PU_NORMALIZATION = 1  # ProcessUnitOptions.NormalizationOptions
_CP_FEATURE, _CP_IMAGE = 1, 2  # ContentProperties.FeatureProperties / ImageProperties
_AXIS_LABELS = 2  # AssociatedFileType.TENSOR_AXIS_LABELS


def build_official_metadata(meta: OfficialMetadata) -> bytes:
    """Serialize ``meta`` as a ModelMetadata flatbuffer (the bytes of the TFLITE_METADATA buffer)."""
    import flatbuffers

    b = flatbuffers.Builder(1024)

    def table(fields: list[tuple[int, str, Any]], n_slots: int) -> int:
        """A table from (slot, kind, value): kind 'off' (offset), 'u8' or 'i8'; offsets must exist already."""
        b.StartObject(n_slots)
        for slot, kind, value in fields:
            if value is None:
                continue
            if kind == "off":
                b.PrependUOffsetTRelativeSlot(slot, value, 0)
            elif kind == "u8":
                b.PrependUint8Slot(slot, value, 0)
            else:
                b.PrependInt8Slot(slot, value, 0)
        return b.EndObject()

    def vector(offsets: list[int]) -> int:
        b.StartVector(4, len(offsets), 4)
        for off in reversed(offsets):
            b.PrependUOffsetTRelative(off)
        return b.EndVector()

    def floats(values: list[float]) -> int:
        b.StartVector(4, len(values), 4)
        for v in reversed(values):
            b.PrependFloat32(v)
        return b.EndVector()

    s = b.CreateString
    # input image: normalization options + image content
    norm = table([(0, "off", floats(meta.mean)), (1, "off", floats(meta.std))], 2)
    unit = table([(0, "u8", _PU_NORMALIZATION), (1, "off", norm)], 2)
    image = table([(0, "i8", meta.color)], 2)
    in_content = table([(0, "u8", _CP_IMAGE), (1, "off", image)], 3)
    in_name, in_desc = s("image"), s("Input image, resized to the model input and normalized as (p - mean) / std.")
    in_units = vector([unit])
    tin = table([(0, "off", in_name), (1, "off", in_desc), (3, "off", in_content), (4, "off", in_units)], 7)
    # output scores: feature content + the label file as an associated file
    feature = table([], 0)
    out_content = table([(0, "u8", _CP_FEATURE), (1, "off", feature)], 3)
    lab_name, lab_desc = s(meta.labels_file), s("Class names, one per line, in output order.")
    label_file = table([(0, "off", lab_name), (1, "off", lab_desc), (2, "i8", _AXIS_LABELS)], 5)
    out_files = vector([label_file])
    out_name, out_desc = s("logits"), s("One score (logit) per class; apply softmax for probabilities.")
    tout = table([(0, "off", out_name), (1, "off", out_desc), (3, "off", out_content), (6, "off", out_files)], 7)
    inputs, outputs = vector([tin]), vector([tout])
    subgraph = table([(0, "off", s("image_classifier")), (2, "off", inputs), (3, "off", outputs)], 10)
    subgraphs = vector([subgraph])
    fields = [(0, "off", s(meta.name)), (1, "off", s(meta.description)), (2, "off", s(meta.version)),
              (3, "off", subgraphs), (4, "off", s(meta.author)), (7, "off", s(meta.min_parser_version))]
    b.Finish(table(fields, 8), file_identifier=_MD_FILE_ID)
    return bytes(b.Output())


def attach_associated_files(path: str | Path, files: dict[str, bytes]) -> None:
    """Append ``files`` as a zip after the model flatbuffer (runtimes ignore trailing bytes)."""
    import zipfile

    with zipfile.ZipFile(Path(path), "a", compression=zipfile.ZIP_STORED) as zf:
        for name, data in sorted(files.items()):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            zf.writestr(info, data)
