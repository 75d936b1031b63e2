"""JSON stored in the database read back tolerantly, and written strictly.

Rows written before numbers were checked may hold ``NaN``/``Infinity`` (Python's ``json`` writes them, but
they are not JSON): reading replaces them with ``null`` and says so, so one bad row never breaks a list.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from edgeprune.schemas import finite_or_none, nonfinite_path

log = logging.getLogger("edgeprune.server")
REPAIRED_HEADER = "X-Edgeprune-Repaired"  # ids of stored records whose non-finite numbers were sent as null


def dumps_strict(value: Any) -> str:
    """JSON text for storage; raises ``ValueError`` on NaN/Infinity instead of writing non-JSON."""
    return json.dumps(value, allow_nan=False)


def loads_tolerant(text: str, what: str) -> tuple[Any, bool]:
    """Parse stored JSON; non-finite numbers become ``None``. Returns (value, repaired); (None, True) if damaged."""
    try:
        value = json.loads(text)
    except ValueError:
        log.error("%s is stored damaged (not JSON); leaving it out", what)
        return None, True
    if nonfinite_path(value) is None:
        return value, False
    log.warning("%s holds non-finite numbers (stored before they were refused); answering them as null", what)
    return finite_or_none(value), True


def repaired_headers(ids: list[str]) -> dict[str, str]:
    """Response header naming the records answered with nulls in place of bad numbers (empty when none)."""
    return {REPAIRED_HEADER: ",".join(ids)[:4000]} if ids else {}
