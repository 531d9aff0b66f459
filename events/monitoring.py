"""Figures for operators and metrics: the horizon and each follower's lag."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import psycopg

from events import sqlfiles

Q = sqlfiles.load("events.sql", "store.sql")
RUNNER = sqlfiles.load("events.projections.sql", "runner.sql")


@dataclass(frozen=True, slots=True)
class Horizon:
    epoch: int
    xmin: int
    oldest_transaction_seconds: float | None
    """Age of the oldest running transaction holding a transaction id (None if none is
    visible to this role: grant pg_read_all_stats to see other roles' sessions)."""
    held_seconds: float | None
    """How long the oldest committed event has waited behind the horizon (None: none waits)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class FollowerLag:
    name: str
    checkpoint: str
    events_applied: int
    lag_seconds: float
    """Age of the oldest event this follower has not applied yet (0 when caught up)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def horizon(conn: psycopg.Connection[Any]) -> Horizon:
    row = conn.execute(Q["horizon"]).fetchone()
    assert row is not None
    epoch, xmin, oldest, held = row
    return Horizon(
        epoch=int(epoch),
        xmin=int(xmin),
        oldest_transaction_seconds=None if oldest is None else float(oldest),
        held_seconds=None if held is None else float(held),
    )


def follower_lags(conn: psycopg.Connection[Any]) -> list[FollowerLag]:
    lags = []
    for name, epoch, tx_id, position, applied, _updated in conn.execute(RUNNER["lags"]).fetchall():
        first = conn.execute(Q["first_after"], {"epoch": epoch, "tx_id": tx_id, "position": position}).fetchone()
        lags.append(
            FollowerLag(
                name=name,
                checkpoint=f"{epoch}/{tx_id}/{position}",
                events_applied=int(applied),
                lag_seconds=0.0 if first is None else max(0.0, float(first[0])),
            )
        )
    return lags


def bump_epoch(conn: psycopg.Connection[Any], reason: str) -> int:
    row = conn.execute(Q["bump_epoch"], {"reason": reason}).fetchone()
    assert row is not None
    return int(row[0])
