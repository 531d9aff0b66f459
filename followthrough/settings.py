"""Settings, from the environment (and the CLI's options). One object per process."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from scheduler.domain.schedule import MAX_DISPATCH_LEAD


class Settings(BaseSettings):
    """Every setting can be given as ``FOLLOWTHROUGH_<NAME>``; the two URLs also as
    ``DATABASE_URL`` and ``BROKER_URL``. Unset URLs mean embedded servers under ``home``."""

    model_config = SettingsConfigDict(env_prefix="FOLLOWTHROUGH_", extra="ignore")

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "FOLLOWTHROUGH_DATABASE_URL")
    )
    broker_url: str | None = Field(
        default=None, validation_alias=AliasChoices("BROKER_URL", "FOLLOWTHROUGH_BROKER_URL")
    )
    home: Path = Path(".followthrough")

    log_format: Literal["auto", "json", "console"] = "auto"
    # Colours in console lines (default: when the log's stream is a terminal).
    log_colors: bool | None = None
    log_level: str = "info"

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # uvicorn worker processes of the `api` role (HTTP metrics are then counted per process).
    api_workers: int = Field(default=1, ge=1, le=64)
    # Bounds on what a client may send (see docs/api.md, "Limits").
    api_max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    api_schedule_horizon_days: int = Field(default=365, ge=1, le=3650)
    # /metrics: on its own port when set (0 = off), and/or on the API port behind this token.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_token: str | None = None
    # Rate limits ("limits" library notation), per token and per client address before auth.
    rate_limit_per_token: str = "100/second"  # noqa: S105 - a rate, not a secret
    rate_limit_per_address: str = "200/second"
    rate_limit_enabled: bool = True

    # The media library: the largest upload of each kind (in MiB, enforced while the body is
    # read), the most pixels an image may have to be decoded (larger is refused as a
    # decompression bomb), and the bytes each workspace may store (distinct files, in MiB).
    media_max_image_mb: float = Field(default=16.0, gt=0, le=1024)
    media_max_video_mb: float = Field(default=40.0, gt=0, le=4096)
    media_max_pixels: int = Field(default=40_000_000, ge=1)
    media_quota_mb: float = Field(default=1024.0, gt=0)

    # Dispatch and execution.
    lease_seconds: float = Field(default=30.0, gt=0)
    dispatch_batch: int = Field(default=500, gt=0)
    # Shares due together are sent in messages of up to this many; a worker settles a
    # group in a few statements instead of a few per share.
    dispatch_message_size: int = Field(default=50, ge=1, le=500)
    # While work is flowing, the dispatcher claims again after this long: what fell due
    # meanwhile travels as one group. Longer: fewer, larger groups (less CPU a share); with
    # the lead below at least this plus a worker's pickup, no share waits for it.
    dispatch_tick_ms: int = Field(default=50, ge=1, le=1000)
    # Posts are handed to the broker this much ahead of their due time: the worker records
    # each attempt (and its tasks) with the rest of its group beforehand, and starts each
    # call at its due time. Looks and answers go out at their time.
    dispatch_lead_seconds: float = Field(default=0.15, ge=0, le=MAX_DISPATCH_LEAD.total_seconds())
    # The longest an idle Dramatiq worker waits between polls of a Redis queue (RabbitMQ
    # pushes and needs no polling). Posts are handed out ahead (the lead above), so only
    # looks and answers wait for it; halving it doubles what an idle worker spends polling.
    worker_poll_ms: int = Field(default=50, ge=5)
    max_attempts: int = Field(default=5, ge=1)
    retry_base_seconds: float = Field(default=30.0, gt=0)
    retry_cap_seconds: float = Field(default=3600.0, gt=0)
    queue_prefix: str = "followthrough"
    worker_processes: int = Field(default=2, ge=1)
    worker_threads: int = Field(default=8, ge=1)
    worker_shutdown_seconds: int = Field(default=30, ge=1)
    # Calls to networks: how long to wait for an answer, and how many calls of one group
    # delivery (shares due together) run at once in a worker process.
    channel_timeout_seconds: float = Field(default=20.0, gt=0, le=300)
    worker_call_threads: int = Field(default=50, ge=1, le=500)

    # Database.
    pool_min: int = Field(default=1, ge=0)
    pool_max: int = Field(default=10, ge=1)
    idle_in_transaction_timeout_seconds: int = Field(default=60, ge=1)

    # Projections.
    projector_poll_seconds: float = Field(default=1.0, gt=0)
    # Events a projector folds per transaction, at most (fewer when fewer are there). The
    # shares projection reads back the rows each batch touches: larger batches read each
    # share fewer times (measured 99, 80, 54, 44 us of CPU an event at 1,000, 2,000, 5,000,
    # 10,000), while a batch's transaction, about 0.3 s at 5,000, holds the log's horizon.
    projector_batch: int = Field(default=5000, gt=0)

    # Webhooks out (delivered by the projector role). The keys seal signing secrets at rest:
    # comma-separated Fernet keys, the first seals, any opens (rotation). Unset: one key kept
    # under ``home`` (fine for `followthrough up`; the api and projector roles of a cluster
    # must share it, so set it there). Then one request's timeout, attempts per delivery and
    # their backoff, when a failing endpoint is disabled, how often the inbox is swept for
    # tasks gone overdue, and how long settled deliveries are kept.
    webhook_secret_keys: SecretStr | None = None
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_max_attempts: int = Field(default=8, ge=1, le=50)
    webhook_retry_base_seconds: float = Field(default=5.0, gt=0)
    webhook_retry_cap_seconds: float = Field(default=10 * 3600.0, gt=0)
    webhook_disable_after_failures: int = Field(default=100, ge=1)
    webhook_disable_after_seconds: float = Field(default=5 * 86_400.0, gt=0)
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    webhook_overdue_sweep_seconds: float = Field(default=30.0, gt=0)
    webhook_retention_days: float = Field(default=30.0, ge=2)

    # SLA states of open tasks and unanswered replies: at risk once this share of their time
    # is used; a reply no answer_replies task is due after is due this long after it came.
    sla_at_risk: float = Field(default=0.75, gt=0, lt=1)
    reply_sla_seconds: float = Field(default=86_400.0, gt=0)

    # Supervision by `followthrough up`.
    restart_backoff_max_seconds: float = Field(default=30.0, gt=0)

    @property
    def console_dir(self) -> Path:
        return self.home / "console"
