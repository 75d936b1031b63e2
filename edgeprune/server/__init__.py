"""``edgeprune serve``: a small self-hosted backend for model delivery and measurement collection.

Nothing is created at import time: call :func:`edgeprune.server.app.create_app` with a
:class:`edgeprune.server.settings.ServerSettings` to get a FastAPI application.
The names below are imported lazily so ``import edgeprune.server`` never needs the ``[server]`` extra.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EdgepruneClient", "ServerSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from edgeprune.server.app import create_app

        return create_app
    if name == "ServerSettings":
        from edgeprune.server.settings import ServerSettings

        return ServerSettings
    if name == "EdgepruneClient":
        from edgeprune.server.client import EdgepruneClient

        return EdgepruneClient
    raise AttributeError(name)
