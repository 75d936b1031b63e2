"""Alembic migrations for the edgeprune server (applied by ``Database.migrate`` on start)."""
