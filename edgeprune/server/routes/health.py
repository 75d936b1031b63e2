"""``GET /healthz``: public liveness + database check (no data, no versions of dependencies)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from edgeprune import __version__
from edgeprune.server.deps import StateDep
from edgeprune.server.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz(state: StateDep) -> JSONResponse:
    try:
        ok = state.db.ping()
    except Exception:
        ok = False
    body = Health(status="ok" if ok else "database unavailable", version=__version__, database=state.db.backend)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
