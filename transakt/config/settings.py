"""The one Settings object: read from TRANSAKT_* variables or a .env file, built once at start."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from limits import parse_many
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_JWT_SECRET = "dev-only-insecure-secret-change-me-0123456789"  # refused outside dev mode
DEFAULT_BANK_SECRET = "dev-only-bank-service-secret-0123456789abcdef"  # refused outside dev mode


class InsecureSettings(ValueError):
    """A production setting was left at its insecure development default."""


class Settings(BaseSettings):
    """Everything a Transakt process can be configured with; nothing else reads the environment."""

    model_config = SettingsConfigDict(
        env_prefix="TRANSAKT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    mode: Literal["dev", "prod"] = "dev"
    node_id: str = "node-1"
    data_dir: Path = Path(".transakt")

    # Process: which asyncio event loop servers run on ("auto": uvloop where installed).
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"

    # HTTP front door.
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str | None = None

    # Storage. Unset URLs mean: start the embedded PostgreSQL / Redis under data_dir.
    database_url: str | None = None
    database_pool_min: int = Field(2, ge=1)
    database_pool_max: int = Field(10, ge=1)
    redis_url: str | None = None
    rabbitmq_url: str | None = None
    shards: int = Field(64, ge=1, le=4096)

    # Auth.
    jwt_secret: SecretStr = SecretStr(DEFAULT_JWT_SECRET)
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_ttl_seconds: int = Field(3600, ge=60, le=7 * 24 * 3600)
    password_min_length: int = Field(8, ge=8)

    # Wallet actors and group commit.
    wallet_idle_seconds: float = Field(120.0, gt=0)
    wallet_mailbox_size: int = Field(1000, ge=1)
    ledger_writers: int = Field(2, ge=1, le=32)
    ledger_batch_max: int = Field(512, ge=1, le=10000)
    request_timeout_seconds: float = Field(10.0, gt=0)

    # Sandbox bank and the gateway to it.
    bank_url: str = "http://127.0.0.1:8081"
    bank_host: str = "127.0.0.1"
    bank_port: int = Field(8081, ge=0, le=65535)
    bank_service_secret: SecretStr = SecretStr(DEFAULT_BANK_SECRET)
    bank_schema: str = "bank"
    bank_call_timeout_seconds: float = Field(2.0, gt=0)
    breaker_failure_threshold: int = Field(5, ge=1)
    breaker_reset_seconds: float = Field(5.0, gt=0)
    breaker_reset_max_seconds: float = Field(60.0, gt=0)
    # Bank requests: how many go to the bank at once, and how the buffer is drained and rebuilt.
    bank_max_in_flight: int = Field(256, ge=1, le=100_000)
    bank_drain_concurrency: int = Field(32, ge=1, le=1024)
    bank_drain_batch: int = Field(256, ge=1, le=10_000)
    bank_sweep_seconds: float = Field(5.0, gt=0)
    bank_sweep_min_age_seconds: float = Field(3.0, ge=0)
    bank_reclaim_idle_seconds: float = Field(30.0, gt=0)
    # The sandbox bank process: its account cache and the faults it starts with.
    bank_cache_size: int = Field(4096, ge=1)
    bank_cache_ttl_seconds: float = Field(300.0, gt=0)
    bank_fault_latency_ms: int = Field(0, ge=0, le=600_000)
    bank_fault_failure_rate: float = Field(0.0, ge=0, le=1)
    bank_fault_refuse_all: bool = False
    bank_fault_seed: int | None = None

    # E-mail.
    smtp_host: str | None = None
    smtp_port: int = Field(1025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    mail_from: str = "Transakt <no-reply@transakt.local>"
    smtp_timeout_seconds: float = Field(10.0, gt=0)
    # Mail is sent by `transakt worker`; a node also sends it itself unless told otherwise.
    mail_in_process: bool = True
    mail_workers: int = Field(1, ge=1, le=32)
    mail_batch_size: int = Field(20, ge=1, le=1000)
    mail_retry_min_seconds: float = Field(1.0, gt=0)
    mail_retry_max_seconds: float = Field(300.0, gt=0)
    # A claimed mail not marked within this time is claimed again (its worker died mid-send).
    mail_lease_seconds: float = Field(300.0, gt=0)

    # Outbox relay and the live feed (GET /api/v1/live).
    outbox_poll_seconds: float = Field(1.0, gt=0)
    # Relayed (and, where mail reads them, mailed) events are deleted once this old.
    outbox_retention_seconds: float = Field(7 * 24 * 3600.0, gt=0)
    live_queue_size: int = Field(256, ge=1, le=100_000)
    live_max_connections_per_user: int = Field(16, ge=1, le=10_000)
    live_heartbeat_seconds: float = Field(20.0, gt=0)

    # Trust: throttling (counts in Redis; each rule is "count/window" limits joined by ";"),
    # the proofs of an e-mail address, and how long answers stay under Idempotency-Keys.
    throttle_login_account: str = "5/minute;10/10 minutes;20/hour;40/day"
    throttle_login_ip: str = "60/10 minutes;600/day"
    throttle_signup_ip: str = "10/hour;50/day"
    throttle_money_user: str = "30/minute;500/hour"
    throttle_lookup_user: str = "60/minute;600/hour"
    throttle_email_code_user: str = "10/hour"
    throttle_email_resend_user: str = "3/hour;10/day"
    throttle_bank_link_user: str = "3/day"
    throttle_password_user: str = "5/10 minutes;20/day"
    # A wallet's payments, counted by its actor (no Redis on the payment path).
    wallet_debits_per_second: float = Field(20.0, gt=0)
    wallet_debit_burst: int = Field(40, ge=1)
    email_code_ttl_seconds: float = Field(1800.0, gt=0)
    email_code_attempts: int = Field(5, ge=1, le=20)
    idempotency_retention_seconds: float = Field(24 * 3600.0, ge=3600)
    # Addresses of reverse proxies whose X-Forwarded-For names the client (comma-separated).
    trusted_proxies: str = ""

    log_level: str = "INFO"

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> Settings:
        if self.mode != "dev":
            if self.jwt_secret.get_secret_value() == DEFAULT_JWT_SECRET:
                raise InsecureSettings("TRANSAKT_JWT_SECRET must be set outside dev mode")
            if self.bank_service_secret.get_secret_value() == DEFAULT_BANK_SECRET:
                raise InsecureSettings("TRANSAKT_BANK_SERVICE_SECRET must be set outside dev mode")
            if len(self.jwt_secret.get_secret_value()) < 32:
                raise InsecureSettings("TRANSAKT_JWT_SECRET must be at least 32 characters")
        if self.database_pool_max < self.database_pool_min:
            raise ValueError("database_pool_max must be >= database_pool_min")
        return self

    @field_validator(
        "throttle_login_account",
        "throttle_login_ip",
        "throttle_signup_ip",
        "throttle_money_user",
        "throttle_lookup_user",
        "throttle_email_code_user",
        "throttle_email_resend_user",
        "throttle_bank_link_user",
        "throttle_password_user",
    )
    @classmethod
    def _valid_limits(cls, value: str) -> str:
        try:
            items = parse_many(value)
        except ValueError as error:
            raise ValueError(f"not a list of limits such as '5/minute;20/hour': {error}") from None
        if not items:
            raise ValueError("give at least one limit, such as '5/minute'")
        return value

    def throttle_rules(self) -> dict[str, str]:
        """Every throttle rule by name (``throttle_<name>``)."""
        return {
            name.removeprefix("throttle_"): getattr(self, name)
            for name in type(self).model_fields
            if name.startswith("throttle_")
        }

    @property
    def embedded(self) -> bool:
        """True when no database URL is configured: the node runs its own PostgreSQL."""
        return self.database_url is None
