"""`followthrough projections status` and `followthrough projections rebuild`, as an operator runs them."""

from __future__ import annotations

from typing import Any

import orjson

from events.store import EventStore
from tests.support.cli import cli, command_env
from tests.support.share_histories import in_chunks, share_appends
from tests.support.system import wait_until


def status(env: dict[str, str]) -> dict[str, Any]:
    done = cli("projections", "status", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    found = {p["name"]: p for p in orjson.loads(done.stdout)["projections"]}
    # Every projection the projector runs is listed, the webhooks one included
    assert set(found) == {"shares", "webhooks"}
    return dict(found["shares"])


def test_an_operator_sees_a_projection_behind_rebuilds_it_and_sees_it_caught_up(
    database_url: str, broker_url: str, store: EventStore
) -> None:
    # Given a log of share histories that no projector has read yet
    written = 0
    with store.pool.connection() as conn:
        for chunk in in_chunks(share_appends(600, seed=3), 100):
            store.append_many(chunk, conn=conn)
            written += sum(len(a.events) for a in chunk)
    env = command_env(database_url, broker_url)
    # When the operator asks for the projections' status
    before = wait_until(lambda: (s := status(env))["events_behind"] == written and s, timeout=30, what="status")
    # Then the shares projection is listed at the start of the log, every event behind
    assert before["name"] == "shares"
    assert before["checkpoint"] == "0/0/0"
    assert before["lag_seconds"] >= 0
    # When the operator rebuilds it (no terminal: no progress bar, a summary line after the log lines)
    wait_until(lambda: sum(1 for _ in store.read_all()) == written, timeout=30,
               what="every event below the log's horizon (a rebuild reads up to it)")
    done = cli("projections", "rebuild", "shares", env=env)
    # Then it says what it did, and the status shows it caught up with every event applied
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith(f"rebuilt shares: {written:,} events")
    after = status(env)
    assert (after["events_behind"], after["events_applied"], after["lag_seconds"]) == (0, written, 0.0)
    # And a projection that does not exist is named in a one-line error
    unknown = cli("projections", "rebuild", "nope", env=env)
    assert unknown.returncode == 2
    assert "no projection named 'nope'" in unknown.stderr
    # And a number of workers below one is refused with the reason, before anything is read
    none = cli("projections", "rebuild", "shares", "--workers", "0", env=env)
    assert none.returncode == 2
    assert "argument --workers: '0' is not a whole number of 1 or more" in none.stderr
    assert "Traceback" not in none.stderr
