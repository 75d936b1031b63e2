"""FastAPI dependencies: the app state and the authenticated caller (``AdminKey`` / ``DeviceKey``).

Keys are verified by :class:`edgeprune.server.authgate.AuthGateMiddleware` before the body is read; these
dependencies add the scope checks (and verify the key themselves for pages outside ``/api/``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPBearer

from edgeprune.server.authgate import STATE_KEY, AuthError, client_address, resolve_key
from edgeprune.server.security import KeyInfo, parse_authorization
from edgeprune.server.state import ServerState

# only for the OpenAPI "Authorize" button; the header is parsed below
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <key> (admin or device scope)")


async def get_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.edgeprune
    return state


StateDep = Annotated[ServerState, Depends(get_state)]


async def authorize(request: Request, state: ServerState, needed: str, allow_basic: bool = False) -> KeyInfo:
    """Authenticate the request's key and check it may act with scope ``needed`` (401/403/429 otherwise)."""
    key: KeyInfo | None = getattr(request.state, STATE_KEY, None)
    if key is None:
        challenge = 'Basic realm="edgeprune dashboard", charset="UTF-8"' if allow_basic else "Bearer"
        presented = parse_authorization(request.headers.get("authorization"), allow_basic=allow_basic)
        try:
            key = await resolve_key(state, presented, client_address(request.scope), challenge)
        except AuthError as err:
            raise HTTPException(err.status, err.detail, headers=err.headers) from err
    if not key.allows(needed):
        raise HTTPException(403, f"this endpoint needs a key with scope '{needed}' (yours is '{key.scope}')")
    if key.scope == "device" and not key.app_id:
        raise HTTPException(403, "this device key is not scoped to an app (it predates app scoping); create a new "
                                 "one with `edgeprune keys create --scope device --app-id APP` and revoke this one")
    return key


def check_app(key: KeyInfo, app_id: str) -> None:
    """403 unless ``key`` may act for ``app_id`` (admin keys may act for every app)."""
    if not key.is_admin and key.app_id != app_id:
        raise HTTPException(403, f"this device key is scoped to app '{key.app_id}', not '{app_id}'")


def _require(needed: str) -> Callable[..., Awaitable[KeyInfo]]:
    async def dependency(request: Request, state: StateDep, _: Annotated[object, Depends(_bearer)]) -> KeyInfo:
        return await authorize(request, state, needed)

    dependency.__name__ = f"require_{needed}_key"
    return dependency


AdminKey = Annotated[KeyInfo, Depends(_require("admin"))]
DeviceKey = Annotated[KeyInfo, Depends(_require("device"))]
