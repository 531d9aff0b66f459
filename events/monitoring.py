"""Figures for operators and metrics: the horizon and each follower's lag.

A follower's lag is the age of the oldest event after its checkpoint, committed and not
yet applied (visible or still behind the horizon): 0 when caught up. Every projection
moves its checkpoint over the events it does not use, so an idle one is at 0. One
function (``follower_lags``) gives `/metrics`, `projections status` and the Health page
the same list: every live projection, even before its first checkpoint (`log status`: the
followers that have run).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import psycopg

from events import sqlfiles

Q = sqlfiles.load("events.sql", "store.sql")
RUNNER = sqlfiles.load("events.projections.sql", "runner.sql")

# The projections the projector runs (``followthrough.projectors``; a unit test holds the
# two lists equal), listed before their first checkpoint too.
LIVE_PROJECTIONS: tuple[str, ...] = ("shares", "webhooks")


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
    events_behind: int
    """Events after its checkpoint (committed, whether the horizon has passed them or not)."""
    lag_seconds: float
    """Age of the oldest event this follower has not applied yet (0 when caught up)."""
    updated_at: str | None

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


def follower_lags(conn: psycopg.Connection[Any], names: Iterable[str] = LIVE_PROJECTIONS) -> list[FollowerLag]:
    """Every follower with a checkpoint, and each of ``names`` even without one, by name."""
    with conn.transaction():
        # The planner cannot tell how many events lie behind each follower and guesses high
        # enough to JIT-compile the query: 387 of its 576 ms on 214,165 events, 1.5-3.2 s a
        # scrape during a burst. Counting needs no compiling.
        conn.execute("SET LOCAL jit = off")
        rows = conn.execute(RUNNER["lags_behind"], {"names": list(names)}).fetchall()
    return [
        FollowerLag(
            name=name,
            checkpoint=f"{epoch}/{tx_id}/{position}",
            events_applied=int(applied),
            events_behind=int(behind),
            lag_seconds=max(0.0, float(age or 0.0)),
            updated_at=None if updated is None else updated.isoformat(),
        )
        for name, epoch, tx_id, position, applied, updated, behind, age in rows
    ]


def bump_epoch(conn: psycopg.Connection[Any], reason: str) -> int:
    row = conn.execute(Q["bump_epoch"], {"reason": reason}).fetchone()
    assert row is not None
    return int(row[0])
