"""The API's own settings, given by the composition root (defaults are production's)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class ApiConfig:
    # Bodies larger than this are refused (413) while they are read, before authentication.
    max_body_bytes: int = 64 * 1024
    # The media upload route's own bound (the largest file of any kind, and the form around it).
    max_media_body_bytes: int = 40 * 1024 * 1024 + 64 * 1024
    # A refused body is read and dropped up to this much, so that its sender reads the 413.
    drain_body_bytes: int = 16 * 1024 * 1024
    # How far ahead a share may be scheduled.
    schedule_horizon: timedelta = timedelta(days=365)
    # /metrics on the API port answers only with this bearer token (None: not served there).
    metrics_token: str | None = None
    # "limits" notation ("100/second"); None turns a limit off.
    rate_limit_per_token: str | None = "100/second"  # noqa: S105 - a rate, not a secret
    rate_limit_per_address: str | None = "200/second"
    # Where the counters live: "memory://" or the broker's "redis://..." (shared by replicas).
    rate_limit_storage: str = "memory://"
    # Keys in that storage start with this (the deployment's queue prefix).
    rate_limit_namespace: str = "followthrough"
    # Open work is at risk once this share of its time is used (SLA states).
    sla_at_risk: float = 0.75
    # A reply with no answer_replies task due after it is due this long after it was written.
    reply_sla_seconds: float = 86_400.0
