"""``create_app(settings)``: the FastAPI application factory (no engine or settings at import time)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from edgeprune import __version__
from edgeprune.errors import EdgepruneError
from edgeprune.server import dashboard
from edgeprune.server.authgate import AuthGateMiddleware
from edgeprune.server.middleware import BodyLimitMiddleware, SecurityHeadersMiddleware
from edgeprune.server.routes import ROUTERS
from edgeprune.server.settings import ServerSettings
from edgeprune.server.state import ServerState

log = logging.getLogger("edgeprune.server")
BUNDLE_UPLOAD_PATH = "/api/v1/bundles"
MULTIPART_OVERHEAD = 1024 * 1024  # form fields and boundaries around the zip


def write_new_admin_key(settings: ServerSettings, key: str) -> Path:
    """Put a freshly generated admin key into an owner-only file in the data dir; log only the file's path.

    The key never goes to stdout/stderr, so it cannot end up in journald, container logs or CI output.
    """
    path = settings.admin_key_file
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(key + "\n")
    os.replace(tmp, path)
    os.chmod(path, 0o600)
    message = (f"A new admin API key was generated and written to {path.resolve()} (mode 0600). Read it, store it "
               "safely, then delete the file. Create more keys with `edgeprune keys create`.")
    print(f"\n  {message}\n", file=sys.stderr, flush=True)
    return path


def _key_file_writer(settings: ServerSettings) -> Callable[[str], None]:
    def announce(key: str) -> None:
        write_new_admin_key(settings, key)

    return announce


def _validation_summary(errors: list[dict[str, Any]]) -> str:
    parts = []
    for err in errors[:10]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    raw = exc.errors() if isinstance(exc, RequestValidationError) else []
    errors = [{k: v for k, v in err.items() if k in ("type", "loc", "msg")} for err in raw]
    return JSONResponse(
        status_code=422,
        content=jsonable_encoder({"detail": errors, "message": _validation_summary(errors)}),
    )


async def _on_edgeprune_error(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=400, content={"detail": str(exc)})


def _database_unavailable(exc: BaseException) -> bool:
    """Connection-level database failures (server down, file unreadable, pool exhausted), not query bugs."""
    from sqlalchemy import exc as sa

    if isinstance(exc, sa.IntegrityError | sa.DataError | sa.ProgrammingError | sa.NotSupportedError):
        return False
    return isinstance(exc, sa.OperationalError | sa.InterfaceError | sa.TimeoutError | sa.DatabaseError
                      | sa.DisconnectionError)


async def _on_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """JSON instead of plain text for failures: 503 while the database is unreachable, else 500."""
    if _database_unavailable(exc):
        log.error("database unavailable during %s %s: %s", request.method, request.url.path,
                  str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__)
        return JSONResponse(status_code=503, headers={"Retry-After": "5"},
                            content={"detail": "the database is unavailable; retry later"})
    log.error("unexpected error during %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(status_code=500, content={"detail": "internal server error (see the server log)"})


def create_app(
    settings: ServerSettings | None = None,
    on_new_admin_key: Callable[[str], None] | None = None,
) -> FastAPI:
    """Build the application: routers, limits, optional CORS, and a lifespan that migrates the database."""
    settings = settings or ServerSettings.from_env()
    state = ServerState.from_settings(settings)
    announce = on_new_admin_key or _key_file_writer(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        new_key = await run_in_threadpool(state.startup)
        if new_key:
            announce(new_key)
        try:
            yield
        finally:
            state.shutdown()

    app = FastAPI(
        title="edgeprune server",
        version=__version__,
        description="Model delivery and on-device measurement collection for edgeprune bundles.",
        lifespan=lifespan,
        docs_url=None,  # the Swagger/ReDoc pages load assets from a CDN; /openapi.json stays available
        redoc_url=None,
    )
    app.state.edgeprune = state
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(dashboard.router)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(EdgepruneError, _on_edgeprune_error)
    app.add_exception_handler(SQLAlchemyError, _on_unexpected_error)
    app.add_exception_handler(Exception, _on_unexpected_error)  # last resort: still JSON (500)
    app.add_middleware(AuthGateMiddleware)  # innermost of the middlewares: CORS preflights pass it untouched

    def limit_for(method: str, path: str) -> tuple[int, str]:
        if method == "POST" and path.rstrip("/") == BUNDLE_UPLOAD_PATH:
            return (settings.max_bundle_bytes + MULTIPART_OVERHEAD,
                    f"bundle is larger than the limit of {settings.max_bundle_mb:g} MB")
        return settings.max_request_bytes, f"request body is larger than the limit of {settings.max_request_kb} KB"

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-None-Match", "Range"],
            expose_headers=["ETag", "Content-Range", "Accept-Ranges"],
        )
    app.add_middleware(BodyLimitMiddleware, limit_for=limit_for)
    app.add_middleware(SecurityHeadersMiddleware)
    return app


def serve_forever(settings: ServerSettings, announce: Callable[[str], None] | None = None,
                  banner: Callable[[str], None] | None = None) -> None:
    """Migrate, seed keys, then run uvicorn until interrupted (used by ``edgeprune serve`` and ``-m``)."""
    import uvicorn

    announce = announce or _key_file_writer(settings)
    app = create_app(settings, on_new_admin_key=announce)
    new_key = app.state.edgeprune.startup()  # fail before binding the port if the database is unusable
    if new_key:
        announce(new_key)
    base = f"http://{settings.host}:{settings.port}"
    (banner or (lambda line: print(line, file=sys.stderr, flush=True)))(
        f"edgeprune server on {base} | database {settings.database_label} | data {settings.data_dir.resolve()}\n"
        f"  health: {base}/healthz   dashboard: {base}/dashboard (admin key in the Authorization header)"
    )
    logging.basicConfig(level=settings.log_level.upper() if settings.log_level != "trace" else "DEBUG",
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level, server_header=False)
