"""`edgeprune serve`: run the model-delivery and measurement backend (settings from EDGEPRUNE_* env, flags win)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeprune.cli._common import console, handle_errors


@handle_errors
def serve(
    host: Annotated[str | None, typer.Option(help="bind address [env EDGEPRUNE_HOST, default 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="port [env EDGEPRUNE_PORT, default 8000]")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="bundles + SQLite file [env EDGEPRUNE_DATA_DIR, ./edgeprune-server-data]"),
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="sqlite:///... or postgresql://... [env EDGEPRUNE_DATABASE_URL]"),
    ] = None,
    admin_key: Annotated[str | None, typer.Option(help="seed this admin key (prefer env EDGEPRUNE_ADMIN_KEY)")] = None,
    max_bundle_mb: Annotated[
        float | None, typer.Option(help="largest bundle upload [env EDGEPRUNE_MAX_BUNDLE_MB, 200]"),
    ] = None,
    cors_origins: Annotated[
        str | None, typer.Option(help="comma list of allowed origins; CORS is off by default"),
    ] = None,
    dashboard_public: Annotated[
        bool | None,
        typer.Option(
            "--dashboard-public/--dashboard-private",
            help="serve /dashboard without a key (read-only)",
        ),
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="debug | info | warning | error")] = None,
) -> None:
    """Serve bundles to apps and collect their measurements (SQLite by default, PostgreSQL by URL)."""
    from edgeprune.optional import require

    require("fastapi", "server")
    require("uvicorn", "server")
    from edgeprune.server.app import serve_forever
    from edgeprune.server.settings import ServerSettings

    settings = ServerSettings.from_env(
        host=host, port=port, data_dir=data_dir, database_url=database_url, admin_key=admin_key,
        max_bundle_mb=max_bundle_mb, cors_origins=cors_origins, dashboard_public=dashboard_public,
        log_level=log_level,
    )
    serve_forever(settings, banner=lambda text: console.print(text, highlight=False, soft_wrap=True))
