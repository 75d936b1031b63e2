"""Server settings: a plain pydantic model filled from ``EDGEPRUNE_*`` environment variables, flags win."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from sqlalchemy.engine import make_url

from edgeprune.errors import EdgepruneError

ENV_PREFIX = "EDGEPRUNE_"
MIN_ADMIN_KEY_LENGTH = 24


class ServerSettings(BaseModel):
    """Everything ``edgeprune serve`` can be told; each field ``foo`` is read from ``EDGEPRUNE_FOO``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path = Field(Path("./edgeprune-server-data"), description="bundles, SQLite file and temp uploads")
    database_url: str = Field("", description="SQLAlchemy URL; empty = SQLite file under data_dir")
    bundle_store: str = Field("", description="directory for bundles; empty = data_dir/bundles; s3:// not available")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    admin_key: SecretStr | None = Field(None, description="seeded as an admin key on start (stored hashed)")
    max_bundle_mb: float = Field(200.0, gt=0, description="largest accepted bundle zip")
    max_request_kb: int = Field(1024, gt=0, description="largest accepted JSON request body")
    cors_origins: list[str] = Field(default_factory=list, description="explicit origins; empty = CORS off")
    dashboard_public: bool = Field(False, description="serve /dashboard read-only without a key")
    log_level: str = "info"
    db_pool_size: int = Field(10, ge=1, le=200)
    auth_cache_seconds: float = Field(10.0, ge=0, description="how long a verified key is trusted without a lookup")
    publisher_keys: list[str] = Field(default_factory=list, description="Ed25519 public keys (base64 or key "
                                      "files, comma-separated); when set, only bundles signed by one are accepted")
    # key lifecycle, abuse limits and retention (deploy/README.md "Keys: scopes, expiry, rotation")
    rate_limit_per_minute: int = Field(600, ge=0, description="requests per minute per key; 0 = no limit")
    rate_limit_burst: int = Field(120, ge=1, description="requests a key may send at once before the rate applies")
    auth_failures_per_minute: int = Field(10, ge=0, description="wrong-key attempts per client address; 0 = off")
    auth_failure_burst: int = Field(20, ge=1, description="wrong-key attempts a client address may make at once")
    measurement_quota_per_day: int = Field(10_000, ge=0, description="measurements per device key per UTC day")
    measurement_quota_mb_per_day: float = Field(50.0, ge=0, description="measurement MB per device key per UTC day")
    delivery_retention_days: float = Field(90.0, ge=0, description="keep delivery records this long; 0 = forever")
    measurement_retention_days: float = Field(0.0, ge=0, description="keep measurements this long; 0 = forever")
    retention_interval_minutes: float = Field(60.0, gt=0, description="how often old rows are pruned")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _explicit_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin == "*" or not origin.startswith(("http://", "https://")):
                raise ValueError(f"CORS origin {origin!r} must be an explicit http(s)://host[:port] origin, not '*'")
        return value

    @field_validator("publisher_keys", mode="before")
    @classmethod
    def _split_publisher_keys(cls, value: Any) -> Any:
        return [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else value

    @field_validator("publisher_keys")
    @classmethod
    def _readable_publisher_keys(cls, value: list[str]) -> list[str]:
        """Each key as base64 of its raw 32 bytes (key files are read once, at start-up)."""
        import base64

        from edgeprune.server.signatures import parse_public_key

        try:
            return [base64.b64encode(parse_public_key(entry)).decode("ascii") for entry in value]
        except EdgepruneError as exc:
            raise ValueError(exc.problem) from exc

    @field_validator("admin_key")
    @classmethod
    def _long_admin_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_ADMIN_KEY_LENGTH:
            raise ValueError(f"the admin key must be at least {MIN_ADMIN_KEY_LENGTH} characters")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        value = value.lower()
        if value not in {"critical", "error", "warning", "info", "debug", "trace"}:
            raise ValueError(f"unknown log level {value!r} (use debug, info, warning or error)")
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServerSettings:
        """Read ``EDGEPRUNE_*`` variables, then apply ``overrides`` (flags); ``None`` overrides are ignored."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None and raw != "":
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = str(err["loc"][0]) if err["loc"] else "settings"
            raise EdgepruneError(
                f"invalid server setting {field} ({ENV_PREFIX}{field.upper()} or --{field.replace('_', '-')}): "
                f"{err['msg']}",
                "fix the value or unset it to use the default",
            ) from exc

    # derived values -------------------------------------------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'edgeprune.db').resolve()}"

    @property
    def database_label(self) -> str:
        """The database URL with any password hidden, for logs."""
        return make_url(self.resolved_database_url).render_as_string(hide_password=True)

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file this configuration uses, or ``None`` for another database."""
        url = make_url(self.resolved_database_url)
        if url.get_backend_name() != "sqlite" or not url.database:
            return None
        return Path(url.database).expanduser().resolve()

    @property
    def admin_key_file(self) -> Path:
        """Where a generated admin key is written (mode 0600) instead of being logged."""
        return self.data_dir / "admin-key.txt"

    @property
    def max_bundle_bytes(self) -> int:
        return int(self.max_bundle_mb * 1024 * 1024)

    @property
    def max_request_bytes(self) -> int:
        return self.max_request_kb * 1024
