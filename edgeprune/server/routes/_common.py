"""Small helpers shared by the routers (names, ETags, URLs)."""

from __future__ import annotations

import re

from fastapi import HTTPException

from edgeprune.server.schemas import NAME_PATTERN


def check_name(field: str, value: str) -> None:
    """422 unless ``value`` is a safe app id / channel name."""
    if not re.match(NAME_PATTERN, value):
        raise HTTPException(422, f"{field} {value!r} must be 1-128 letters, digits, '.', '_' or '-'")


def download_url(sha256: str) -> str:
    return f"/api/v1/bundles/{sha256}/download"


def etag_matches(header: str | None, sha256: str) -> bool:
    """True when an ``If-None-Match`` header names this bundle (weak or strong tag, or ``*``)."""
    if not header:
        return False
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/").strip('"') == sha256:
            return True
    return False
