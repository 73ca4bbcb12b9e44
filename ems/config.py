"""Settings, from ``EMS_*`` environment variables (and a ``.env`` file if present).

Built only by the composition root (``ems.app`` / ``ems.cli``); nothing reads the
environment at import time.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ems.throttle import ThrottleSettings

WEAK_SECRETS = frozenset({"changeme", "change-me", "admin", "secret", "password", "ems", "test", "12345678"})
MIN_SECRET_LENGTH = 16
"""An API key shorter than 16 characters can be brute-forced offline from a leaked hash."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EMS_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="postgresql://user@host:port/db, or sqlite:///path/to/file.db; unset: SQLite in data_dir",
    )
    data_dir: Path = Path("ems-data")
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)
    ocpp_host: str = "127.0.0.1"
    ocpp_port: int = Field(default=9000, ge=0, le=65535)
    ocpp_auto_register: bool = False
    ocpp_tls_cert: Path | None = None
    ocpp_tls_key: Path | None = None
    ocpp_audit_frames: bool = False
    ocpp_require_password: bool = Field(
        default=True,
        description="refuse stations without HTTP Basic credentials (a station registered without a password too)",
    )
    api_max_body_bytes: int = Field(
        default=1_048_576, ge=1_024, le=64 * 1_048_576, description="largest HTTP request body accepted (413 above)"
    )
    auth_free_failures: int = Field(
        default=5, ge=1, le=1_000, description="failed authentications per source / identity before lockouts start"
    )
    auth_max_lockout_s: float = Field(
        default=300.0, ge=1.0, le=86_400.0, description="longest lockout after repeated failed authentications"
    )
    mqtt_url: str | None = None
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_tls_ca: Path | None = None
    mqtt_client_id: str | None = Field(
        default=None, description="MQTT client id, stable across restarts (persistent session); unset: ems-<hostname>"
    )
    mqtt_status_interval_s: float = Field(default=30.0, gt=0, description="seconds between site status messages")
    admin_api_key: SecretStr | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = Field(default="text", description="json: one JSON object per log line")
    site_file: Path | None = None
    billing_currency: str = Field(default="EUR", description="Currency of new accounts and of the free default tariff")
    billing_min_hold: Decimal = Field(default=Decimal("5.00"), ge=0, description="Least balance a prepaid start needs")
    billing_max_hold: Decimal = Field(default=Decimal("50.00"), gt=0, description="Most a prepaid session holds")
    payment_webhook_secret: SecretStr | None = Field(
        default=None, description="HMAC key shared with the payment provider; unset: the webhook answers 503"
    )
    public_url: str | None = Field(
        default=None,
        description="Base URL drivers reach the server at (QR stickers: {public_url}/c/{station}/{evse}); "
        "unset: http://<api_host>:<api_port>",
    )
    web_secret: SecretStr | None = Field(
        default=None, description="Signs the driver pages' CSRF tokens; unset: a random one per process (warned)"
    )
    web_test_payments: bool = Field(
        default=False, description="Top-ups through the built-in test payment provider (no real money; on in the demo)"
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        scheme = urlsplit(value).scheme
        if scheme not in ("postgresql", "postgres", "sqlite"):
            raise ValueError(f"unsupported scheme {scheme!r}: use postgresql://user@host:port/db or sqlite:///path.db")
        if scheme == "sqlite" and not value.startswith("sqlite:///"):
            raise ValueError("a SQLite URL is sqlite:///relative/path.db or sqlite:////absolute/path.db")
        return value

    @field_validator("admin_api_key")
    @classmethod
    def _refuse_weak_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or value.get_secret_value() == "":
            return None
        key = value.get_secret_value()
        if key.lower() in WEAK_SECRETS or len(key) < MIN_SECRET_LENGTH:
            raise ValueError(f"EMS_ADMIN_API_KEY must be at least {MIN_SECRET_LENGTH} characters and not a default")
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if urlsplit(value).scheme not in ("mqtt", "mqtts"):
            raise ValueError("EMS_MQTT_URL must look like mqtt://host:1883 or mqtts://host:8883")
        return value

    @field_validator("web_secret")
    @classmethod
    def _refuse_weak_web_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or value.get_secret_value() == "":
            return None
        secret = value.get_secret_value()
        if secret.lower() in WEAK_SECRETS or len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"EMS_WEB_SECRET must be at least {MIN_SECRET_LENGTH} characters and not a default")
        return value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError("EMS_PUBLIC_URL must look like https://charge.example.com (no query)")
        return value.rstrip("/")

    def public_base_url(self) -> str:
        """``public_url``, or the API's own address (``0.0.0.0`` shown as 127.0.0.1)."""
        if self.public_url:
            return self.public_url
        host = "127.0.0.1" if self.api_host in ("0.0.0.0", "::", "") else self.api_host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.api_port}"

    def throttle_settings(self) -> ThrottleSettings:
        return ThrottleSettings(free_failures=self.auth_free_failures, max_lockout_s=self.auth_max_lockout_s)

    @property
    def is_postgres(self) -> bool:
        return self.database_url is not None and urlsplit(self.database_url).scheme in ("postgresql", "postgres")

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file: from ``sqlite:///...`` or ``<data_dir>/ems.db``."""
        if self.database_url and self.database_url.startswith("sqlite:///"):
            return Path(self.database_url.removeprefix("sqlite:///"))
        return self.data_dir / "ems.db"
