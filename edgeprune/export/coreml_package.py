"""The write side of a ``.mlpackage``: reproducible manifest ids and the embedded edgeprune metadata.

Reading a package back (spec, program, metadata) is :mod:`edgeprune.artifacts.coreml`.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from edgeprune.artifacts.coreml import METADATA_KEY, load_spec, spec_file
from edgeprune.fsutil import write_bytes_atomic


def stabilize_manifest(package: Path) -> None:
    """Replace the random item ids in Manifest.json with ids derived from the item paths.

    coremltools draws fresh UUIDs on every save, which is the only thing that made two exports of the same
    model differ; with stable ids the package (and its sha256) is reproducible.
    """
    path = Path(package) / "Manifest.json"
    manifest = json.loads(path.read_text())
    entries = manifest["itemInfoEntries"]
    ids = {
        old: str(uuid.uuid5(uuid.NAMESPACE_URL, f"edgeprune-mlpackage:{e['path']}"))
        for old, e in entries.items()
    }
    manifest["itemInfoEntries"] = {ids[old]: e for old, e in entries.items()}
    manifest["rootModelIdentifier"] = ids[manifest["rootModelIdentifier"]]
    write_bytes_atomic(path, json.dumps(manifest, indent=4, sort_keys=True).encode())



def embed_coreml_metadata(package: Path, metadata: dict[str, Any]) -> None:
    """Write ``metadata`` into the spec: all of it as JSON under user_defined["edgeprune"], each top-level key
    again on its own (strings as-is, the rest JSON) so Xcode shows it, plus description/author/version.
    Embedding again replaces what an earlier call wrote and keeps the converter's own entries."""
    spec = load_spec(package)
    meta = spec.description.metadata
    user = meta.userDefined
    for key in json.loads(user.get(METADATA_KEY, "{}")):  # keys flattened by an earlier call
        user.pop(str(key), None)
    user[METADATA_KEY] = json.dumps(metadata, sort_keys=True)
    for key, value in metadata.items():
        if str(key) != METADATA_KEY:
            user[str(key)] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    export = metadata.get("export", {})
    labels = [str(v) for v in metadata.get("labels") or []]
    classes = f" ({len(labels)} classes: {', '.join(labels)})" if labels else ""
    producer = f"exported by edgeprune {export.get('edgeprune_version', '')}".rstrip()
    meta.shortDescription = (
        f"Image classifier{classes}; {export.get('precision', '')} Core ML program {producer}"
    )
    meta.author = str(metadata.get("author", "edgeprune"))
    meta.versionString = str(metadata.get("version", export.get("edgeprune_version", "")))
    pre = metadata.get("preprocessing") or {}
    layout = export.get("io_layout", "NCHW")
    if spec.description.input:
        spec.description.input[0].shortDescription = (
            f"normalised float image, {layout} (mean={pre.get('mean')}, std={pre.get('std')}; "
            "full recipe in the 'preprocessing' metadata)"
        )
    if spec.description.output:
        spec.description.output[0].shortDescription = "class logits (apply softmax for probabilities)"
    write_bytes_atomic(spec_file(package), spec.SerializeToString())
