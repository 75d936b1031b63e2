"""FastAPI dependencies: the app state and the authenticated caller (``AdminKey`` / ``DeviceKey``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPBearer

from edgeprune.server.security import KeyInfo, authenticate, hash_key, parse_authorization
from edgeprune.server.state import ServerState

# only for the OpenAPI "Authorize" button; the header is parsed below
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <key> (admin or device scope)")


async def get_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.edgeprune
    return state


StateDep = Annotated[ServerState, Depends(get_state)]


async def authorize(request: Request, state: ServerState, needed: str, allow_basic: bool = False) -> KeyInfo:
    """Authenticate the request's key and check it may act with scope ``needed`` (401/403 otherwise)."""
    challenge = 'Basic realm="edgeprune dashboard", charset="UTF-8"' if allow_basic else "Bearer"
    presented = parse_authorization(request.headers.get("authorization"), allow_basic=allow_basic)
    if presented is None:
        raise HTTPException(401, "missing API key: send 'Authorization: Bearer <key>'",
                            headers={"WWW-Authenticate": challenge})
    digest = hash_key(presented)
    key = state.keys.get(digest)
    if key is None:
        key = await run_in_threadpool(authenticate, state.db, presented)
        if key is None:
            raise HTTPException(401, "invalid or revoked API key", headers={"WWW-Authenticate": challenge})
        state.keys.put(digest, key)
    if not key.allows(needed):
        raise HTTPException(403, f"this endpoint needs a key with scope '{needed}' (yours is '{key.scope}')")
    return key


def _require(needed: str) -> Callable[..., Awaitable[KeyInfo]]:
    async def dependency(request: Request, state: StateDep, _: Annotated[object, Depends(_bearer)]) -> KeyInfo:
        return await authorize(request, state, needed)

    dependency.__name__ = f"require_{needed}_key"
    return dependency


AdminKey = Annotated[KeyInfo, Depends(_require("admin"))]
DeviceKey = Annotated[KeyInfo, Depends(_require("device"))]
