"""The one Settings object: read from TRANSAKT_* variables or a .env file, built once at start.

Settings are grouped per component (``settings.bank``, ``settings.mail``, ...), each group a
small frozen model handed to the component that needs it, and nothing else. The variables keep
their flat names: ``TRANSAKT_BANK_URL`` is ``settings.bank.url`` and ``TRANSAKT_NODE_ID`` is
``settings.node_id`` (a group is the first word after the prefix). Code may also pass flat
names (``Settings(bank_url=...)``, ``settings.with_values(live_queue_size=16)``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from transakt.config.groups import ReviewSettings, ThrottleSettings, _Group

__all__ = [
    "DEFAULT_BANK_SECRET",
    "DEFAULT_JWT_SECRET",
    "BankSettings",
    "BreakerSettings",
    "DatabaseSettings",
    "EmailSettings",
    "IdempotencySettings",
    "InsecureSettings",
    "JwtSettings",
    "LedgerSettings",
    "LiveSettings",
    "MailSettings",
    "OutboxSettings",
    "PasswordSettings",
    "RabbitmqSettings",
    "RedisSettings",
    "ReviewSettings",
    "Settings",
    "SmtpSettings",
    "ThrottleSettings",
    "WalletSettings",
]

DEFAULT_JWT_SECRET = "dev-only-insecure-secret-change-me-0123456789"  # refused outside dev mode
DEFAULT_BANK_SECRET = "dev-only-bank-service-secret-0123456789abcdef"  # refused outside dev mode


class InsecureSettings(ValueError):
    """A production setting was left at its insecure development default."""


class DatabaseSettings(_Group):
    """PostgreSQL: unset URL means the embedded server under the data directory."""

    url: str | None = None
    pool_min: int = Field(2, ge=1)
    pool_max: int = Field(10, ge=1)

    @model_validator(mode="after")
    def _pool_bounds(self) -> Self:
        if self.pool_max < self.pool_min:
            raise ValueError("database_pool_max must be >= database_pool_min")
        return self


class RedisSettings(_Group):
    """Redis (bank request buffer, throttles): unset URL means the embedded server."""

    url: str | None = None


class RabbitmqSettings(_Group):
    """RabbitMQ: unset, everything runs in one process; set, nodes share wallets and events."""

    url: str | None = None
    # Queue and exchange names start with this: clusters sharing a broker keep apart by it.
    prefix: str = Field("transakt", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    # How often a node probes the shards it does not own (it learns ownership from deliveries).
    probe_seconds: float = Field(1.0, gt=0, le=60)
    # Unacknowledged broker messages (each a batch of commands) per shard consumer.
    prefetch: int = Field(64, ge=1, le=10_000)


class JwtSettings(_Group):
    """Access tokens: the HMAC secret (at least 32 characters in prod), algorithm, lifetime."""

    secret: SecretStr = SecretStr(DEFAULT_JWT_SECRET)
    algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    ttl_seconds: int = Field(3600, ge=60, le=7 * 24 * 3600)


class PasswordSettings(_Group):
    """The password rule."""

    min_length: int = Field(8, ge=8)


class WalletSettings(_Group):
    """Wallet actors: passivation, mailbox, and the payments a wallet takes per second."""

    idle_seconds: float = Field(120.0, gt=0)
    mailbox_size: int = Field(1000, ge=1)
    debits_per_second: float = Field(20.0, gt=0)
    debit_burst: int = Field(40, ge=1)


class LedgerSettings(_Group):
    """Group commit: concurrent writer loops and the most transfers per transaction."""

    writers: int = Field(2, ge=1, le=32)
    batch_max: int = Field(512, ge=1, le=10000)
    # How often each node voids the holds whose expiry has passed.
    hold_sweep_seconds: float = Field(1.0, gt=0, le=60)


class BankSettings(_Group):
    """The sandbox bank: where the wallet calls it and with what secret, how the gateway
    buffers and drains requests, and (for ``transakt bank``) where it listens, its schema,
    cache and the faults it starts with."""

    url: str = "http://127.0.0.1:8081"
    host: str = "127.0.0.1"
    port: int = Field(8081, ge=0, le=65535)
    service_secret: SecretStr = SecretStr(DEFAULT_BANK_SECRET)
    schema_: str = Field("bank", alias="schema")
    call_timeout_seconds: float = Field(2.0, gt=0)
    max_in_flight: int = Field(256, ge=1, le=100_000)
    drain_concurrency: int = Field(32, ge=1, le=1024)
    drain_batch: int = Field(256, ge=1, le=10_000)
    sweep_seconds: float = Field(5.0, gt=0)
    sweep_min_age_seconds: float = Field(3.0, ge=0)
    reclaim_idle_seconds: float = Field(30.0, gt=0)
    cache_size: int = Field(4096, ge=1)
    cache_ttl_seconds: float = Field(300.0, gt=0)
    fault_latency_ms: int = Field(0, ge=0, le=600_000)
    fault_failure_rate: float = Field(0.0, ge=0, le=1)
    fault_refuse_all: bool = False
    fault_seed: int | None = None
    # The outage mode the sandbox starts in (transakt.bankapi.modes): normal, slow (every call
    # waits 1.5 s), down (every call 503) or refusing (every money movement declined). Any mode
    # but normal replaces the fault_* knobs above, except the seed.
    mode: Literal["normal", "slow", "down", "refusing"] = "normal"
    # The sandbox opens the documented demo accounts at start (transakt.sandbox.demo).
    demo_accounts: bool = True


class BreakerSettings(_Group):
    """The circuit breaker in front of the bank."""

    failure_threshold: int = Field(5, ge=1)
    reset_seconds: float = Field(5.0, gt=0)
    reset_max_seconds: float = Field(60.0, gt=0)


class SmtpSettings(_Group):
    """The SMTP server; unset host means the local mail sink under the data directory."""

    host: str | None = None
    port: int = Field(1025, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = False
    timeout_seconds: float = Field(10.0, gt=0)


class MailSettings(_Group):
    """Who mail is from, who sends it, and how it is retried and leased."""

    sender: str = Field("Transakt <no-reply@transakt.local>", alias="from")
    in_process: bool = True
    workers: int = Field(1, ge=1, le=32)
    batch_size: int = Field(20, ge=1, le=1000)
    retry_min_seconds: float = Field(1.0, gt=0)
    retry_max_seconds: float = Field(300.0, gt=0)
    # Backstop only: a dead worker's mails are taken over at the next poll (its connection
    # closes). This is how long one PostgreSQL still sees connected, but making no progress
    # (hung, or its host gone without closing the connection), keeps them.
    lease_seconds: float = Field(300.0, gt=0)


class OutboxSettings(_Group):
    """The outbox relay's safety-net poll, and how long relayed events are kept."""

    poll_seconds: float = Field(1.0, gt=0)
    retention_seconds: float = Field(7 * 24 * 3600.0, gt=0)


class LiveSettings(_Group):
    """The live feed (GET /api/v1/live)."""

    queue_size: int = Field(256, ge=1, le=100_000)
    max_connections_per_user: int = Field(16, ge=1, le=10_000)
    heartbeat_seconds: float = Field(20.0, gt=0)


class EmailSettings(_Group):
    """The code mailed to verify an address: its life and its tries."""

    code_ttl_seconds: float = Field(1800.0, gt=0)
    code_attempts: int = Field(5, ge=1, le=20)


class IdempotencySettings(_Group):
    """How long an Idempotency-Key keeps its first answer (at least an hour)."""

    retention_seconds: float = Field(24 * 3600.0, ge=3600)


#: Each group, by the first word of its variables' names.
_GROUPS: dict[str, type[_Group]] = {
    "database": DatabaseSettings,
    "redis": RedisSettings,
    "rabbitmq": RabbitmqSettings,
    "jwt": JwtSettings,
    "password": PasswordSettings,
    "wallet": WalletSettings,
    "ledger": LedgerSettings,
    "bank": BankSettings,
    "breaker": BreakerSettings,
    "smtp": SmtpSettings,
    "mail": MailSettings,
    "outbox": OutboxSettings,
    "live": LiveSettings,
    "throttle": ThrottleSettings,
    "email": EmailSettings,
    "idempotency": IdempotencySettings,
    "review": ReviewSettings,
}


class Settings(BaseSettings):
    """Everything a Transakt process can be configured with; nothing else reads the environment."""

    model_config = SettingsConfigDict(
        env_prefix="TRANSAKT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        frozen=True,
    )

    mode: Literal["dev", "prod"] = "dev"
    # Unique per node of a cluster (it names the node's queue); may hold {hostname} and {pid}.
    node_id: str = "node-1"
    data_dir: Path = Path(".transakt")
    # Which asyncio event loop servers run on ("auto": uvloop where installed).
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"

    # The HTTP front door, and the address clients use when it differs (a proxy, a container).
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str | None = None
    # Reverse proxies whose X-Forwarded-For names the client (comma-separated).
    trusted_proxies: str = ""
    request_timeout_seconds: float = Field(10.0, gt=0)
    # Wallets fall into this many shards (a stable hash of the wallet id) across nodes.
    shards: int = Field(64, ge=1, le=4096)

    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    rabbitmq: RabbitmqSettings = RabbitmqSettings()
    jwt: JwtSettings = JwtSettings()
    password: PasswordSettings = PasswordSettings()
    wallet: WalletSettings = WalletSettings()
    ledger: LedgerSettings = LedgerSettings()
    bank: BankSettings = BankSettings()
    breaker: BreakerSettings = BreakerSettings()
    smtp: SmtpSettings = SmtpSettings()
    mail: MailSettings = MailSettings()
    outbox: OutboxSettings = OutboxSettings()
    live: LiveSettings = LiveSettings()
    throttle: ThrottleSettings = ThrottleSettings()
    email: EmailSettings = EmailSettings()
    idempotency: IdempotencySettings = IdempotencySettings()
    review: ReviewSettings = ReviewSettings()

    @field_validator("node_id")
    @classmethod
    def _expand_node_id(cls, value: str) -> str:
        """``{hostname}`` and ``{pid}`` become this host's name and this process's id, so the
        replicas of one configuration (``docker compose --scale``) each get an id of their own."""
        import os
        import socket

        expanded = value
        for name, replacement in (("hostname", socket.gethostname()), ("pid", str(os.getpid()))):
            expanded = expanded.replace(f"{{{name}}}", replacement)
        if "{" in expanded or "}" in expanded:
            raise ValueError(f"{value!r}: the only placeholders are {{hostname}} and {{pid}}")
        return expanded

    @model_validator(mode="before")
    @classmethod
    def _fold_flat_names(cls, data: Any) -> Any:
        """Accept ``bank_url=...`` beside ``bank={"url": ...}``, as the variables are named."""
        if not isinstance(data, dict):
            return data
        folded: dict[str, Any] = {}
        flat: list[tuple[str, str, Any]] = []
        for name, value in data.items():
            group, _, rest = name.partition("_")
            if group in _GROUPS and rest and name not in cls.model_fields:
                flat.append((group, rest, value))  # a flat name wins over its group's dict
            elif name in _GROUPS and isinstance(value, BaseModel):
                folded[name] = value.model_dump(by_alias=True)
            else:
                folded[name] = value
        for group, rest, value in flat:
            section = folded.get(group)
            folded[group] = {**(section if isinstance(section, dict) else {}), rest: value}
        return folded

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> Self:
        if self.mode != "dev":
            if self.jwt.secret.get_secret_value() == DEFAULT_JWT_SECRET:
                raise InsecureSettings("TRANSAKT_JWT_SECRET must be set outside dev mode")
            if self.bank.service_secret.get_secret_value() == DEFAULT_BANK_SECRET:
                raise InsecureSettings("TRANSAKT_BANK_SERVICE_SECRET must be set outside dev mode")
            if len(self.jwt.secret.get_secret_value()) < 32:
                raise InsecureSettings("TRANSAKT_JWT_SECRET must be at least 32 characters")
        return self

    def with_values(self, **values: Any) -> Settings:
        """A copy with some values changed, by their flat names (``live_queue_size=16``)."""
        return type(self).model_validate({**self.model_dump(by_alias=True), **values})

    @classmethod
    def flat_names(cls) -> list[str]:
        """Every setting by its flat name (the variable without TRANSAKT_), in order."""
        names: list[str] = []
        for name in cls.model_fields:
            group = _GROUPS.get(name)
            if group is None:
                names.append(name)
            else:
                names.extend(
                    f"{name}_{sub.alias or key}" for key, sub in group.model_fields.items()
                )
        return names

    @property
    def embedded(self) -> bool:
        """True when no database URL is configured: the node runs its own PostgreSQL."""
        return self.database.url is None
