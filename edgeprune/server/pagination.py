"""Keyset pagination: ``?limit=&cursor=``, the next page linked in a ``Link: <...>; rel="next"`` header.

Bodies stay plain JSON lists (older clients keep working); the cursor is opaque to clients.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

T = TypeVar("T")
Limit = Annotated[int, Query(ge=1, le=1000, description="page size (1-1000)")]
Cursor = Annotated[str | None, Query(max_length=400, description="from the previous page's Link rel=next")]
_SEP = "\x1f"


def encode_cursor(*parts: object) -> str:
    raw = _SEP.join(str(p) for p in parts).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None, count: int) -> list[str] | None:
    """The cursor's ``count`` parts, ``None`` for the first page, 422 for anything malformed."""
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = None
    parts = raw.split(_SEP) if raw is not None else []
    if len(parts) != count:
        raise HTTPException(422, "malformed cursor: use the URL from the previous page's Link header")
    return parts


def cursor_int(cursor: str | None) -> int | None:
    parts = decode_cursor(cursor, 1)
    if parts is None:
        return None
    try:
        return int(parts[0])
    except ValueError:
        raise HTTPException(422, "malformed cursor: use the URL from the previous page's Link header") from None


def page(request: Request, rows: Sequence[T], limit: int, cursor_of: Callable[[T], str],
         render: Callable[[T], Any]) -> JSONResponse:
    """Answer ``rows[:limit]`` (``rows`` was fetched with ``limit + 1``) with a next link when more exist."""
    items = [render(r) for r in rows[:limit]]
    headers = {}
    if len(rows) > limit:
        nxt = request.url.include_query_params(cursor=cursor_of(rows[limit - 1]), limit=limit)
        headers["Link"] = f'<{nxt.path}?{nxt.query}>; rel="next"'
    return JSONResponse(jsonable_encoder(items), headers=headers)
