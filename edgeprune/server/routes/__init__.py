"""One router per resource; ``ROUTERS`` is the list ``create_app`` mounts."""

from __future__ import annotations

from edgeprune.server.routes import audit, bundles, channels, health, keys, measurements

ROUTERS = [health.router, bundles.router, channels.router, measurements.router, keys.router, audit.router]
