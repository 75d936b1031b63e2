"""Authentication before anything else: every ``/api/`` request is checked (key, expiry, rate limits)
before its body is read or parsed, so a request without a valid key gets 401, never 422 or 413.

The verified :class:`KeyInfo` is left in ``request.state.edgeprune_key``; the route dependencies
(``AdminKey`` / ``DeviceKey`` in :mod:`edgeprune.server.deps`) then check the scope.
"""

from __future__ import annotations

from typing import Any

from fastapi.concurrency import run_in_threadpool
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from edgeprune.server.security import KeyInfo, authenticate, hash_key, parse_authorization
from edgeprune.server.state import ServerState

STATE_KEY = "edgeprune_key"
GATED_PREFIX = "/api/"


class AuthError(Exception):
    """An authentication failure with its HTTP status, message and headers."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}

    def response(self) -> JSONResponse:
        return JSONResponse({"detail": self.detail}, status_code=self.status, headers=self.headers)


async def resolve_key(state: ServerState, presented: str | None, client: str, challenge: str = "Bearer") -> KeyInfo:
    """The caller's valid key, or :class:`AuthError` (401 missing/invalid, 429 rate limits, 503 no database)."""
    if presented is None:
        raise AuthError(401, "missing API key: send 'Authorization: Bearer <key>'", {"WWW-Authenticate": challenge})
    digest = hash_key(presented)
    key = state.keys.get(digest)
    if key is not None and key.expired():
        key = None
    if key is None:
        wait = state.auth_failures.wait_time(client)
        if wait:
            raise AuthError(429, "too many failed authentication attempts from this address; retry later",
                            {"Retry-After": str(wait)})
        try:
            key = await run_in_threadpool(authenticate, state.db, presented)
        except SQLAlchemyError as exc:
            raise AuthError(503, f"database unavailable, cannot check the API key ({exc.__class__.__name__})",
                            {"Retry-After": "5"}) from exc
        if key is None:
            state.auth_failures.take(client)
            raise AuthError(401, "invalid, expired or revoked API key", {"WWW-Authenticate": challenge})
        state.keys.put(digest, key)
    wait = state.key_rates.take(key.id)
    if wait:
        raise AuthError(429, f"rate limit of {state.settings.rate_limit_per_minute} requests per minute for this "
                             "key exceeded; retry later", {"Retry-After": str(wait)})
    if state.last_used.due(key.id):
        await run_in_threadpool(state.last_used.write, state.db, key.id)
    return key


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class AuthGateMiddleware:
    """Authenticate ``/api/`` requests (except CORS preflights) before the application sees them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(GATED_PREFIX) or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        state: ServerState = scope["app"].state.edgeprune
        header = None
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        try:
            key = await resolve_key(state, parse_authorization(header), client_address(scope))
        except AuthError as err:
            await err.response()(scope, receive, send)
            return
        scope_state: dict[str, Any] = scope.setdefault("state", {})
        scope_state[STATE_KEY] = key
        await self.app(scope, receive, send)
