"""Initial schema: keys, bundles, channels (+history), deliveries, measurements.

Revision ID: 0001_initial
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("lookup", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False),
    )
    op.create_index("ix_api_keys_lookup", "api_keys", ["lookup"])

    op.create_table(
        "bundles",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("model_json", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("uploaded_by", sa.Integer, nullable=True),
    )

    op.create_table(
        "bundle_artifacts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "bundle_sha256", sa.String(64), sa.ForeignKey("bundles.sha256", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("artifact_sha256", sa.String(64), nullable=False),
        sa.Column("file", sa.String(500), nullable=False),
        sa.Column("format", sa.String(50), nullable=False),
        sa.Column("precision", sa.String(50), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_bundle_artifacts_bundle_sha256", "bundle_artifacts", ["bundle_sha256"])
    op.create_index("ix_bundle_artifacts_artifact_sha256", "bundle_artifacts", ["artifact_sha256"])

    op.create_table(
        "channels",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("app_id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("bundle_sha256", sa.String(64), sa.ForeignKey("bundles.sha256"), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("app_id", "name", name="uq_channels_app_name"),
    )

    op.create_table(
        "channel_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("app_id", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(128), nullable=False),
        sa.Column("bundle_sha256", sa.String(64), nullable=False),
        sa.Column("previous_sha256", sa.String(64), nullable=True),
        sa.Column("changed_at", TS, nullable=False),
        sa.Column("changed_by", sa.Integer, nullable=True),
    )
    op.create_index("ix_channel_events_app_channel", "channel_events", ["app_id", "channel"])

    op.create_table(
        "delivery_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("app_id", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(128), nullable=False),
        sa.Column("abi", sa.String(64), nullable=False),
        sa.Column("bundle_sha256", sa.String(64), nullable=False),
        sa.Column("not_modified", sa.Boolean, nullable=False),
        sa.Column("requested_at", TS, nullable=False),
        sa.Column("key_id", sa.Integer, nullable=True),
    )

    op.create_table(
        "measurements",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("artifact_sha256", sa.String(128), nullable=False),
        sa.Column("artifact_name", sa.String(500), nullable=False),
        sa.Column("device_kind", sa.String(64), nullable=False),
        sa.Column("device_id", sa.String(200), nullable=False),
        sa.Column("device_model", sa.String(200), nullable=False),
        sa.Column("p50_ms", sa.Float, nullable=True),
        sa.Column("timing_meaningful", sa.Boolean, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("key_id", sa.Integer, nullable=True),
    )
    op.create_index("ix_measurements_artifact_sha256", "measurements", ["artifact_sha256"])
    op.create_index("ix_measurements_device_kind", "measurements", ["device_kind"])
    op.create_index("ix_measurements_received_at", "measurements", ["received_at"])


def downgrade() -> None:
    for table in ("measurements", "delivery_events", "channel_events", "channels", "bundle_artifacts"):
        op.drop_table(table)
    op.drop_table("bundles")
    op.drop_table("api_keys")
