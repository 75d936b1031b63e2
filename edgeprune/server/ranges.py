"""``Range`` requests as RFC 9110 (section 14) says: an invalid header is ignored (200 with the whole file),
416 only when the header is valid but none of its ranges can be satisfied."""

from __future__ import annotations

import json
import os
import re
from typing import Literal

import anyio
from starlette.datastructures import Headers
from starlette.responses import FileResponse
from starlette.types import Receive, Scope, Send

MAX_RANGES = 100  # more parts than this: the header is ignored (a server may)
_INT_RANGE = re.compile(r"^(\d{1,19})-(\d{0,19})$")
_SUFFIX_RANGE = re.compile(r"^-(\d{1,19})$")
Plan = list[tuple[int, int]] | Literal["ignore", "unsatisfiable"]


def plan_range(header: str, size: int) -> Plan:
    """Byte ranges ``[(first, last_inclusive)]`` to send, ``"ignore"`` or ``"unsatisfiable"``."""
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return "ignore"
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts or len(parts) > MAX_RANGES:
        return "ignore"
    wanted: list[tuple[int, int]] = []
    for part in parts:
        if m := _INT_RANGE.match(part):
            first, last = int(m[1]), int(m[2]) if m[2] else None
            if last is not None and last < first:
                return "ignore"  # e.g. bytes=5-2: an invalid range-spec makes the whole header invalid
            if first < size:
                wanted.append((first, min(last if last is not None else size - 1, size - 1)))
        elif m := _SUFFIX_RANGE.match(part):
            length = int(m[1])
            if length > 0 and size > 0:
                wanted.append((max(size - length, 0), size - 1))
        else:
            return "ignore"
    return wanted or "unsatisfiable"


def _without(scope: Scope, names: set[bytes]) -> Scope:
    return {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() not in names]}


class RangedFileResponse(FileResponse):
    """A :class:`FileResponse` whose ``Range`` handling follows RFC 9110 (JSON body on 416)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"].upper() not in ("GET", "HEAD") or self.status_code != 200:
            await super().__call__(scope, receive, send)
            return
        headers = Headers(scope=scope)
        header, if_range = headers.get("range"), headers.get("if-range")
        if header is None:
            await super().__call__(scope, receive, send)
            return
        if self.stat_result is None:
            self.stat_result = await anyio.to_thread.run_sync(os.stat, self.path)
            self.set_stat_headers(self.stat_result)
        size = self.stat_result.st_size
        plan = plan_range(header, size)
        if plan == "ignore" or (if_range is not None and not self._should_use_range(if_range)):
            await super().__call__(_without(scope, {b"range", b"if-range"}), receive, send)
            return
        if plan == "unsatisfiable":
            body = json.dumps({"detail": f"none of the requested ranges ({header[:100]}) lies within the "
                                         f"{size} bytes of this file"}).encode()
            await send({"type": "http.response.start", "status": 416, "headers": [
                (b"content-range", f"bytes */{size}".encode()), (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()), (b"etag", self.headers["etag"].encode())]})
            await send({"type": "http.response.body", "body": b"" if scope["method"].upper() == "HEAD" else body})
            return
        canonical = "bytes=" + ",".join(f"{first}-{last}" for first, last in plan)
        ranged = _without(scope, {b"range"})
        ranged["headers"] = [*ranged["headers"], (b"range", canonical.encode())]
        await super().__call__(ranged, receive, send)
