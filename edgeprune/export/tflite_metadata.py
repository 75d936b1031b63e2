"""Embed / read a JSON blob in a .tflite file's flatbuffer ``metadata`` list (entry name "edgeprune").

The TFLite schema lets a model carry named byte buffers (``Model.metadata[i] -> buffers[j]``); runtimes
ignore names they do not know, so the model loads and runs unchanged. The schema bindings used here are the
ones shipped with the runtime (``ai_edge_litert.schema_py_generated``), so no extra package is needed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.errors import EdgepruneError

METADATA_NAME = "edgeprune"
_FILE_IDENTIFIER = b"TFL3"
_BUFFER_ALIGN = 16  # the TFLite schema asks for 16-byte aligned buffer data (force_align: 16)


def _schema():
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


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
    import flatbuffers
    from ai_edge_litert.tools import flatbuffer_utils

    schema = _schema()
    path = Path(path)
    payload = json.dumps(metadata, sort_keys=True, default=str).encode("utf-8")
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


def read_tflite_metadata_bytes(data: bytes, name: str = METADATA_NAME) -> dict[str, Any] | None:
    """The JSON metadata stored under ``name`` in a serialized model, or None if there is none."""
    schema = _schema()
    model = schema.Model.GetRootAs(data, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if (entry.Name() or b"").decode() != name:
            continue
        buf = model.Buffers(entry.Buffer())
        if buf.Size():  # data stored after the flatbuffer (large-model layout)
            raw = bytes(data[buf.Offset() : buf.Offset() + buf.Size()])
        else:
            raw = buf.DataAsNumpy().tobytes() if buf.DataLength() else b""
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EdgepruneError(
                f"the '{name}' metadata in this .tflite is not valid JSON",
                "re-export the model with edgeprune",
            ) from exc
    return None


def read_tflite_metadata(path: str | Path) -> dict[str, Any] | None:
    """The edgeprune metadata dict embedded in a .tflite file, or None if the file has none."""
    return read_tflite_metadata_bytes(Path(path).read_bytes())
