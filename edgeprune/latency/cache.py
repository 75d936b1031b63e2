"""The latency tables on disk: one JSON file per device fingerprint, written atomically, merged shape by shape.

Location: ``$EDGEPRUNE_LATENCY_CACHE``, else ``$XDG_CACHE_HOME/edgeprune/latency``, else
``~/.cache/edgeprune/latency``. A table never expires: a new runtime version, thread count or precision is a
new fingerprint and so a new file.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from edgeprune.fsutil import user_cache_dir, write_json_atomic
from edgeprune.latency.table import LatencyTable

ENV_CACHE = "EDGEPRUNE_LATENCY_CACHE"


def cache_dir() -> Path:
    return user_cache_dir(ENV_CACHE, "latency")


def fingerprint_key(fingerprint: dict[str, Any]) -> str:
    """A readable, stable file stem: the lane kind and device model, then a hash of the whole fingerprint."""
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:12]
    label = re.sub(r"[^A-Za-z0-9]+", "-", f"{fingerprint.get('kind', '')}-{fingerprint.get('model', '')}")
    return f"{label.strip('-')[:48]}-{digest}"


def table_path(fingerprint: dict[str, Any]) -> Path:
    return cache_dir() / f"{fingerprint_key(fingerprint)}.json"


def load_table(fingerprint: dict[str, Any]) -> LatencyTable:
    """The cached table of this fingerprint, or an empty one (a missing or unreadable file is not an error)."""
    path = table_path(fingerprint)
    try:
        table = LatencyTable.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return LatencyTable(dict(fingerprint))
    return table if table.fingerprint == fingerprint else LatencyTable(dict(fingerprint))


def save_table(table: LatencyTable) -> Path:
    path = table_path(table.fingerprint)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json_atomic(path, table.to_json())
