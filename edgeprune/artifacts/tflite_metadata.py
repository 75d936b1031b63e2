"""Reading the JSON metadata that edgeprune embeds in a .tflite file (the writer lives in export/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgeprune.errors import EdgepruneError

METADATA_NAME = "edgeprune"


def tflite_schema() -> Any:
    """The generated flatbuffer classes of the TFLite schema (shipped with ai-edge-litert)."""
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def read_tflite_metadata_bytes(data: bytes, name: str = METADATA_NAME) -> dict[str, Any] | None:
    """The JSON metadata stored under ``name`` in a serialized model, or None if there is none."""
    schema = tflite_schema()
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
