"""Database tables (SQLAlchemy 2.0 ORM). The schema itself is owned by the Alembic migrations."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every engine (SQLite hands back naive values otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


class ApiKey(Base):
    """An API key; only the SHA-256 of the key is stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    lookup: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    # lifecycle (migration 0002): device keys name the one app they may use; admin keys have no app
    app_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    source: Mapped[str] = mapped_column(String(16), default="api")  # api | cli | env | generated


class Bundle(Base):
    """A content-addressed bundle zip plus its parsed ``model.json``."""

    __tablename__ = "bundles"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(200))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    model_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    uploaded_by: Mapped[int | None] = mapped_column(Integer, nullable=True)


class BundleArtifactRow(Base):
    """One model file listed in a bundle (joins measurements, which name the artifact's sha256)."""

    __tablename__ = "bundle_artifacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bundle_sha256: Mapped[str] = mapped_column(ForeignKey("bundles.sha256", ondelete="CASCADE"), index=True)
    artifact_sha256: Mapped[str] = mapped_column(String(64), index=True)
    file: Mapped[str] = mapped_column(String(500))
    format: Mapped[str] = mapped_column(String(50))
    precision: Mapped[str] = mapped_column(String(50))
    size_bytes: Mapped[int] = mapped_column(BigInteger)


class Channel(Base):
    """``(app_id, channel)`` -> the bundle devices should run now."""

    __tablename__ = "channels"
    __table_args__ = (UniqueConstraint("app_id", "name", name="uq_channels_app_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(128))
    bundle_sha256: Mapped[str] = mapped_column(ForeignKey("bundles.sha256"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ChannelEvent(Base):
    """Every (re-)pointing of a channel, oldest first; a rollback is just another event."""

    __tablename__ = "channel_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(128))
    bundle_sha256: Mapped[str] = mapped_column(String(64))
    previous_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    changed_by: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (Index("ix_channel_events_app_channel", "app_id", "channel"),)


class DeliveryEvent(Base):
    """One ``current`` request: which app/channel/ABI asked and what it was given."""

    __tablename__ = "delivery_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(128))
    abi: Mapped[str] = mapped_column(String(64), default="")
    bundle_sha256: Mapped[str] = mapped_column(String(64))
    not_modified: Mapped[bool] = mapped_column(Boolean, default=False)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    key_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class MeasurementRow(Base):
    """A posted :class:`edgeprune.schemas.Measurement`: the full body plus a few indexed columns."""

    __tablename__ = "measurements"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    artifact_sha256: Mapped[str] = mapped_column(String(128), index=True)
    artifact_name: Mapped[str] = mapped_column(String(500))
    device_kind: Mapped[str] = mapped_column(String(64), index=True)
    device_id: Mapped[str] = mapped_column(String(200))
    device_model: Mapped[str] = mapped_column(String(200), default="")
    p50_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    timing_meaningful: Mapped[bool] = mapped_column(Boolean, default=True)
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    key_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    app_id: Mapped[str | None] = mapped_column(String(128), nullable=True)  # the posting device key's app
    body_bytes: Mapped[int] = mapped_column(Integer, default=0)  # for the per-key daily byte quota

    __table_args__ = (Index("ix_measurements_key_received", "key_id", "received_at"),)


class BundleApp(Base):
    """Which apps may read a bundle: uploaded for that app, or pointed at by one of its channels."""

    __tablename__ = "bundle_apps"

    bundle_sha256: Mapped[str] = mapped_column(ForeignKey("bundles.sha256", ondelete="CASCADE"), primary_key=True)
    app_id: Mapped[str] = mapped_column(String(128), primary_key=True)

    __table_args__ = (Index("ix_bundle_apps_app_id", "app_id"),)


class AuditEvent(Base):
    """An admin action (key create/revoke/rotate, publish, channel move); never pruned."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    key_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(300), default="")
    detail: Mapped[str] = mapped_column(Text, default="{}")
