"""Request/response bodies of the HTTP API. Measurements use :class:`edgeprune.schemas.Measurement` as is."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SHA256_PATTERN = r"^[0-9a-f]{64}$"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class BundleSignatureOut(BaseModel):
    """The publisher's Ed25519 signature over model.json, verified when the bundle was stored."""

    key_id: str = Field(description="first 16 hex characters of the sha256 of the raw public key")
    algorithm: str = Field(description="Ed25519")
    public_key: str = Field(description="base64 of the raw 32-byte public key")
    signature: str = Field(description="base64 of the 64-byte signature over the exact bytes of model.json")
    signed_sha256: str = Field(description="sha256 of the signed model.json")


class BundleUploaded(BaseModel):
    """Answer to ``POST /api/v1/bundles``."""

    bundle_sha256: str
    name: str
    version: str
    size_bytes: int
    signature: BundleSignatureOut | None = Field(None, description="null when the bundle is not signed")


class ArtifactSummary(BaseModel):
    file: str
    format: str
    precision: str
    sha256: str
    size_bytes: int


class BundleSummary(BundleUploaded):
    """One entry of ``GET /api/v1/bundles``."""

    created_at: datetime
    download_url: str
    artifacts: list[ArtifactSummary]
    channels: list[str] = Field(description="'app_id/channel' currently pointing at this bundle")


class ChannelPointer(BaseModel):
    """Body of ``PUT /api/v1/apps/{app_id}/channels/{channel}``."""

    model_config = ConfigDict(extra="forbid")

    bundle_sha256: str = Field(pattern=SHA256_PATTERN)


class ChannelState(BaseModel):
    app_id: str
    channel: str
    bundle_sha256: str
    previous_sha256: str | None
    updated_at: datetime


class ChannelEventOut(BaseModel):
    bundle_sha256: str
    previous_sha256: str | None
    changed_at: datetime


class CurrentModel(BaseModel):
    """Answer to ``GET .../current``: what a device should run, and where to fetch it."""

    bundle_sha256: str
    name: str
    version: str
    size_bytes: int
    download_url: str
    model_json: dict[str, Any]
    signature: BundleSignatureOut | None = Field(None, description="null when the bundle is not signed")


class Health(BaseModel):
    status: str
    version: str
    database: str
