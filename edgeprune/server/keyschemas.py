"""Bodies of the key and audit endpoints (kept apart from schemas.py, which holds the data bodies)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from edgeprune.server.schemas import NAME_PATTERN


class KeyCreate(BaseModel):
    """Body of ``POST /api/v1/keys``; a device key needs ``app_id``; expiry is optional."""

    model_config = ConfigDict(extra="forbid")

    scope: Literal["admin", "device"]
    label: str = Field("", max_length=200)
    app_id: str | None = Field(None, pattern=NAME_PATTERN, description="required for device keys")
    expires_in_days: float | None = Field(None, gt=0, le=36_500, allow_inf_nan=False,
                                          description="the key stops working after this many days")

    @field_validator("app_id")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return value or None


class KeyPublic(BaseModel):
    id: int
    scope: str
    label: str
    created_at: datetime
    revoked: bool
    app_id: str | None = None
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    source: str = "api"


class KeyCreated(BaseModel):
    """The only response that ever contains a key in clear."""

    id: int
    scope: str
    label: str
    app_id: str | None = None
    expires_at: datetime | None = None
    key: str


class AuditOut(BaseModel):
    id: int
    at: datetime
    key_id: int | None
    action: str
    target: str
    detail: dict[str, Any]
