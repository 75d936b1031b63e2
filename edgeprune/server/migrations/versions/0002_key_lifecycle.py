"""Key lifecycle and trust: key app scope/expiry/last use/source, per-app bundle access, audit log,
measurement owner app + size (quotas), indexes for quotas and retention.

Revision ID: 0002_key_lifecycle
Revises: 0001_initial
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_key_lifecycle"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("app_id", sa.String(128), nullable=True))
        batch.add_column(sa.Column("expires_at", TS, nullable=True))
        batch.add_column(sa.Column("last_used_at", TS, nullable=True))
        batch.add_column(sa.Column("source", sa.String(16), nullable=False, server_default="api"))
    # the key seeded from EDGEPRUNE_ADMIN_KEY was recognisable only by its label so far
    op.execute("UPDATE api_keys SET source = 'env' WHERE label = 'EDGEPRUNE_ADMIN_KEY'")
    op.execute("UPDATE api_keys SET source = 'generated' WHERE label = 'generated on first start'")

    with op.batch_alter_table("measurements") as batch:
        batch.add_column(sa.Column("app_id", sa.String(128), nullable=True))
        batch.add_column(sa.Column("body_bytes", sa.Integer, nullable=False, server_default="0"))
    op.execute("UPDATE measurements SET body_bytes = length(body)")
    op.create_index("ix_measurements_key_received", "measurements", ["key_id", "received_at"])
    op.create_index("ix_delivery_events_requested_at", "delivery_events", ["requested_at"])

    op.create_table(
        "bundle_apps",
        sa.Column("bundle_sha256", sa.String(64), sa.ForeignKey("bundles.sha256", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("app_id", sa.String(128), primary_key=True),
    )
    op.create_index("ix_bundle_apps_app_id", "bundle_apps", ["app_id"])
    # every bundle a channel of an app ever pointed at stays readable by that app's devices
    op.execute(
        "INSERT INTO bundle_apps (bundle_sha256, app_id) SELECT DISTINCT e.bundle_sha256, e.app_id "
        "FROM channel_events e JOIN bundles b ON b.sha256 = e.bundle_sha256"
    )

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("key_id", sa.Integer, nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_index("ix_bundle_apps_app_id", table_name="bundle_apps")
    op.drop_table("bundle_apps")
    op.drop_index("ix_delivery_events_requested_at", table_name="delivery_events")
    op.drop_index("ix_measurements_key_received", table_name="measurements")
    with op.batch_alter_table("measurements") as batch:
        batch.drop_column("body_bytes")
        batch.drop_column("app_id")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("source")
        batch.drop_column("last_used_at")
        batch.drop_column("expires_at")
        batch.drop_column("app_id")
