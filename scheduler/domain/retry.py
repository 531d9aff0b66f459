"""Retry policy: after a failed attempt, retry later or give up. Returns a decision value."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class RetryAt:
    at: datetime


@dataclass(frozen=True, slots=True)
class GiveUp:
    reason: str


RetryDecision = RetryAt | GiveUp


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, honouring a channel's Retry-After."""

    max_attempts: int = 5
    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)
    jitter: float = 0.2

    def decide(
        self,
        *,
        attempt: int,
        retryable: bool,
        now: datetime,
        random: float,
        retry_after: timedelta | None = None,
    ) -> RetryDecision:
        """``random`` is a number in [0, 1) supplied by the caller, so this stays pure."""
        if not retryable:
            return GiveUp("permanent failure")
        if attempt >= self.max_attempts:
            return GiveUp(f"gave up after {attempt} attempts")
        # The exponent is capped first: past ~40 attempts 2**n would overflow a timedelta.
        delay = min(self.cap, self.base * (2 ** min(attempt - 1, 32)))
        delay = delay * (1 - self.jitter + 2 * self.jitter * random)
        if retry_after is not None and retry_after > delay:
            delay = retry_after
        return RetryAt(now + delay)
