"""Rebuilding a projection from the log: the same model as the live projector built,
swapped in with no moment where readers see less, and no event applied twice after."""

from __future__ import annotations

import threading
from itertools import pairwise
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from events.projections.rebuild import RebuildWorkerError, rebuild
from events.projections.runner import ProjectionRunner
from events.projections.shares import SharesProjection
from events.store import EventStore
from followthrough.settings import Settings
from tests.support.rebuild_projections import FailsInAWorker
from tests.support.share_histories import in_chunks, share_appends
from tests.support.system import wait_until

COUNTS = (
    "SELECT (SELECT count(*) FROM rm_shares), (SELECT count(*) FROM rm_response_tasks),"
    " (SELECT count(*) FROM response_inbox), (SELECT sum(open + done_on_time + done_late + overdue)"
    " FROM followthrough_daily), (SELECT count(*) FROM rm_replies)"
)


def runner(store: EventStore, settings: Settings) -> ProjectionRunner:
    return ProjectionRunner(store, SharesProjection(), conninfo=settings.database_url or "", batch_size=200)


def append_histories(store: EventStore, pool: ConnectionPool[Any], events: int, *, seed: int) -> int:
    """Append about ``events`` events of share histories; returns how many were written."""
    written = 0
    with pool.connection() as conn:
        for chunk in in_chunks(share_appends(events, seed=seed), 100):
            versions = store.append_many(chunk, conn=conn)
            assert None not in versions.values()
            written += sum(len(a.events) for a in chunk)
    return written


def all_readable(store: EventStore, count: int) -> None:
    """Wait until the log's horizon has passed every event appended so far (the
    server is shared: other sessions' transactions can hold it back a moment)."""
    wait_until(lambda: sum(1 for _ in store.read_all()) >= count, timeout=30, what="the horizon")


def live_model_of(settings: Settings, store: EventStore, pool: ConnectionPool[Any], events: int, *, seed: int) -> int:
    """Append about ``events`` events of share histories and let the live projector build
    the model from them; returns how many were written."""
    written = append_histories(store, pool, events, seed=seed)
    all_readable(store, written)
    assert runner(store, settings).catch_up_fully() == written
    return written


def storage_parameters(pool: ConnectionPool[Any]) -> dict[str, list[str]]:
    """Each table's storage parameters (fillfactor, autovacuum settings)."""
    with pool.connection() as conn:
        rows = conn.execute("SELECT relname, reloptions FROM pg_class WHERE relkind = 'r' AND relname LIKE 'rm_%%'")
        return {name: options or [] for name, options in rows}


def model(pool: ConnectionPool[Any]) -> tuple[list[Any], list[Any], list[Any]]:
    """Every row of the tables the shares projection owns, every column."""
    with pool.connection() as conn:
        shares = conn.execute("SELECT * FROM rm_shares ORDER BY share_id").fetchall()
        tasks = conn.execute("SELECT * FROM rm_response_tasks ORDER BY task_id").fetchall()
        replies = conn.execute("SELECT * FROM rm_replies ORDER BY id").fetchall()
    return shares, tasks, replies


def reply_coverage(pool: ConnectionPool[Any]) -> dict[str, int]:
    """How many rows of the model show each reply outcome (the comparison is only as
    good as the cases the histories reach)."""
    with pool.connection() as conn:
        cur = conn.execute(Q_COVERAGE)
        row = cur.fetchone()
        assert row is not None
        return {c.name: int(v) for c, v in zip(cur.description or (), row, strict=True)}


Q_COVERAGE = """
SELECT (SELECT count(*) FROM rm_replies WHERE state = 'unanswered' AND answer_status IS NULL) AS left_alone,
       (SELECT count(*) FROM rm_replies WHERE state = 'answered' AND NOT answered_natively) AS answered,
       (SELECT count(*) FROM rm_replies WHERE state = 'answered' AND answered_natively) AS answered_natively,
       (SELECT count(*) FROM rm_replies WHERE state = 'answered' AND dismissed_at IS NOT NULL)
           AS dismissed_then_answered,
       (SELECT count(*) FROM rm_replies WHERE state = 'dismissed') AS dismissed,
       (SELECT count(*) FROM rm_replies WHERE answer_status = 'given_up') AS given_up,
       (SELECT count(*) FROM rm_replies WHERE parent_id IS NOT NULL) AS threaded,
       (SELECT count(*) FROM rm_replies WHERE assignee IS NOT NULL) AS assigned,
       (SELECT count(*) FROM rm_replies WHERE assignee IS NOT NULL AND state <> 'unanswered') AS assigned_handled,
       (SELECT count(*) FROM rm_shares s
        WHERE replies_received > (SELECT count(*) FROM rm_replies r WHERE r.share_id = s.share_id)) AS counted_twice,
       (SELECT count(*) FROM rm_shares WHERE replies_answered > 0) AS shares_answered,
       (SELECT count(*) FROM rm_shares WHERE replies_collected) AS shares_looked,
       (SELECT count(*) FROM rm_shares WHERE engagement_at IS NOT NULL) AS shares_with_engagement,
       (SELECT count(*) FROM rm_shares WHERE engagement_quotes IS NOT NULL) AS shares_with_quotes,
       (SELECT count(*) FROM rm_shares WHERE NOT replies_collected) AS shares_not_collectable
"""


def applied(pool: ConnectionPool[Any]) -> int:
    with pool.connection() as conn:
        row = conn.execute("SELECT events_applied FROM projection_checkpoints WHERE name = 'shares'").fetchone()
    return int(row[0]) if row else 0


def privileges(pool: ConnectionPool[Any]) -> list[Any]:
    with pool.connection() as conn:
        return conn.execute(
            "SELECT table_name, grantee, privilege_type FROM information_schema.role_table_grants"
            " WHERE table_name IN ('rm_shares', 'rm_response_tasks', 'rm_replies', 'response_inbox', 'integrity')"
            " ORDER BY 1, 2, 3"
        ).fetchall()


@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "two-processes"])
def test_a_rebuilt_shares_model_equals_the_one_the_live_projector_built(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], workers: int
) -> None:
    # Given a log of varied share histories (retries, holds, abandons, duplicates, looks,
    # replies answered, failed, given up, answered natively, dismissed, assigned)
    written = append_histories(store, pool, 3000, seed=7)
    all_readable(store, written)
    # And the live projector caught up on it, with the tables' privileges noted
    live = runner(store, settings)
    assert live.catch_up_fully() == written
    built_live = model(pool)
    assert 0 not in reply_coverage(pool).values(), reply_coverage(pool)
    grants, parameters = privileges(pool), storage_parameters(pool)
    assert parameters["rm_shares"] == ["fillfactor=70"]  # the live projector's updates stay on their page
    # When the projection is rebuilt from the start of the log, in windows small enough that
    # shares are written out and read back mid-history (their tasks and replies with them)
    # (with two processes: split by stream, each process folding half of it)
    seen: list[tuple[int, int]] = []
    result = rebuild(store, SharesProjection(), window=150, progress=lambda done, total: seen.append((done, total)),
                     workers=workers, parallel_min_events=0)
    # Then the rebuilt model is the live one, row for row, reached through the same names
    assert (result.events, result.workers, len(result.worker_peak_rss_mb)) == (written, workers, workers - 1)
    assert model(pool) == built_live
    assert privileges(pool) == grants
    assert storage_parameters(pool) == parameters
    assert seen[-1] == (written, written)
    with pool.connection() as conn:
        assert conn.execute("SELECT sent_shares_without_response_tasks FROM integrity").fetchone() == (0,)
        names = conn.execute("SELECT relname FROM pg_class WHERE relname LIKE 'rm_%%' ORDER BY 1").fetchall()
    assert [n for (n,) in names] == sorted(
        ["rm_replies", "rm_replies_inbox_idx", "rm_replies_newest_idx", "rm_replies_pkey", "rm_replies_share_reply_key",
         "rm_replies_assignee_idx", "rm_replies_unanswered_idx",
         "rm_response_tasks", "rm_response_tasks_due_idx", "rm_response_tasks_pkey", "rm_response_tasks_share_idx",
         "rm_shares", "rm_shares_pkey", "rm_shares_post_idx", "rm_shares_workspace_idx"])
    # And the live projector resumes from the rebuild's checkpoint: nothing applied twice
    assert live.catch_up() == 0
    more = append_histories(store, pool, 200, seed=8)
    all_readable(store, written + more)
    assert live.catch_up_fully() == more


@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "two-processes"])
def test_readers_never_see_the_model_shrink_while_it_is_rebuilt_under_live_traffic(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], workers: int
) -> None:
    # Given a log of share histories, the live projector following it, and a writer still appending
    written = append_histories(store, pool, 4000, seed=11)
    all_readable(store, written)
    stop = threading.Event()
    projector = threading.Thread(target=runner(store, settings).run, args=(stop,))
    projector.start()
    wait_until(lambda: applied(pool) >= written, timeout=60, what="the projector")

    def write() -> None:
        seed = 100
        while not stop.is_set():
            append_histories(store, pool, 50, seed=seed)
            seed += 1

    # And a reader counting rows of the tables and views over and over
    counts: list[tuple[int, ...]] = []
    errors: list[BaseException] = []

    def read() -> None:
        with pool.connection() as conn:
            while not stop.is_set():
                try:
                    row = conn.execute(COUNTS).fetchone()
                except Exception as exc:  # any failure a reader sees is the finding
                    errors.append(exc)
                    return
                assert row is not None
                counts.append(tuple(int(v or 0) for v in row))

    threads = [threading.Thread(target=write), threading.Thread(target=read)]
    for t in threads:
        t.start()
    try:
        # When the projection is rebuilt meanwhile (with two processes, the shares the writer
        # goes on with after the processes' checkpoint are read back and folded on at the swap)
        result = rebuild(store, SharesProjection(), window=500, workers=workers, parallel_min_events=0)
    finally:
        stop.set()
        for t in [*threads, projector]:
            t.join(timeout=60)
    # Then the reader never failed and never saw a count go down
    assert not errors
    assert len(counts) > 10
    drops = [(a, b) for a, b in pairwise(counts) if any(y < x for x, y in zip(a, b, strict=True))]
    assert drops == []
    assert result.events >= written
    # And once the writer stopped, the live projector brings the rebuilt model to the whole log,
    # each event applied once: the same model a second rebuild makes
    with pool.connection() as conn:
        row = conn.execute("SELECT count(*) FROM events WHERE type = ANY(%s)", (list(SharesProjection.types or ()),))
        total = int((row.fetchone() or (0,))[0])
    final = runner(store, settings)
    wait_until(lambda: final.catch_up() >= 0 and applied(pool) == total, timeout=60, what="catch-up")
    followed = model(pool)
    rebuild(store, SharesProjection(), window=500)
    assert model(pool) == followed


def test_the_live_projector_following_concurrent_writers_builds_the_model_a_rebuild_builds(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any]
) -> None:
    # Given two writers appending share histories at once while the live projector follows
    # the log, in small batches (so a share's rows are read back and folded on many times)
    stop = threading.Event()
    follower = ProjectionRunner(store, SharesProjection(), conninfo=settings.database_url or "", batch_size=37,
                                poll_seconds=0.05)
    projector = threading.Thread(target=follower.run, args=(stop,))
    projector.start()
    written: list[int] = []

    def write(seed: int) -> None:
        for n in range(6):
            written.append(append_histories(store, pool, 150, seed=seed + n))

    writers = [threading.Thread(target=write, args=(seed,)) for seed in (300, 400)]
    try:
        for t in writers:
            t.start()
        for t in writers:
            t.join(timeout=120)
        # When it has applied every event
        wait_until(lambda: applied(pool) == sum(written), timeout=60, what="the projector")
    finally:
        stop.set()
        projector.join(timeout=60)
    followed = model(pool)
    assert len(followed[0]) > 50
    # Then a rebuild from the log makes the same model, row for row
    rebuild(store, SharesProjection(), window=500)
    assert model(pool) == followed


WAITING_FOR_REPLIES = (
    "SELECT count(*) FROM pg_locks WHERE relation = 'rm_replies'::regclass AND mode = 'AccessExclusiveLock'"
    " AND NOT granted"
)


def test_a_reader_holding_one_table_while_it_reads_another_is_not_deadlocked_by_the_swap(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any]
) -> None:
    # Given a log of share histories and the live model built from it
    written = live_model_of(settings, store, pool, 600, seed=5)
    # And a reader whose transaction has read rm_replies (its lock held until it ends)
    stop_waiting = threading.Event()
    seen_waiting: list[bool] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            with pool.connection() as conn, conn.transaction():
                conn.execute("SELECT count(*) FROM rm_replies").fetchone()
                holding.set()
                # (it waits until the swap queues behind it, then reads a table the swap takes first)
                wait_until(lambda: stop_waiting.is_set() or _count(pool, WAITING_FOR_REPLIES) > 0, timeout=60,
                           interval=0.005, what="the swap to wait for rm_replies")
                seen_waiting.append(not stop_waiting.is_set())
                conn.execute("SELECT count(*) FROM rm_shares").fetchone()
        except Exception as exc:  # any failure the reader sees is the finding
            errors.append(exc)

    holding = threading.Event()
    reader = threading.Thread(target=read)
    reader.start()
    assert holding.wait(30)
    # When the projection is rebuilt meanwhile
    try:
        result = rebuild(store, SharesProjection(), window=500)
    finally:
        stop_waiting.set()
        reader.join(timeout=60)
    # Then the swap waited for the reader, the reader's transaction went through, and the rebuild too
    assert seen_waiting == [True]
    assert errors == []
    assert result.events == written


def _count(pool: ConnectionPool[Any], query: str) -> int:
    with pool.connection() as conn:
        row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def test_a_rebuild_refuses_a_table_with_a_column_its_fold_does_not_fill(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any]
) -> None:
    # Given the live model built from a log of share histories
    live_model_of(settings, store, pool, 300, seed=3)
    # And a column a migration gave rm_replies that the rebuild's fold does not know
    with pool.connection() as conn:
        conn.execute("ALTER TABLE rm_replies ADD COLUMN sentiment text")
        conn.execute("UPDATE rm_replies SET sentiment = 'glad'")
    before = model(pool)
    # When the projection is rebuilt
    with pytest.raises(RuntimeError, match="rm_replies: sentiment"):
        rebuild(store, SharesProjection(), window=500)
    # Then the live model is as it was (the column's values kept), and no half-built table is left
    assert model(pool) == before
    with pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relname LIKE '%%__rebuild'").fetchone() == (0,)


def test_a_parallel_rebuild_whose_worker_fails_leaves_the_live_model_as_it_was(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any]
) -> None:
    # Given the live model built from a log of share histories
    written = live_model_of(settings, store, pool, 600, seed=5)
    before = model(pool)
    # When a rebuild over two processes loses its worker process
    with pytest.raises(RebuildWorkerError, match="partition 1 of 2: RuntimeError: the worker's fold broke"):
        rebuild(store, FailsInAWorker(), window=100, workers=2, parallel_min_events=0)
    # Then the live model is as it was and no half-built table is left
    assert model(pool) == before
    with pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relname LIKE '%%__rebuild'").fetchone() == (0,)
    # And the projection is free to be rebuilt again, to the same model
    assert rebuild(store, SharesProjection(), window=100, workers=2, parallel_min_events=0).events == written
    assert model(pool) == before


def test_replicas_taking_turns_forget_the_rows_they_held_and_build_the_model_a_rebuild_builds(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any]
) -> None:
    # Given share histories, and two projector replicas that each keep in memory the rows
    # they wrote, taking turns batch by batch (as after a failover and back)
    written = append_histories(store, pool, 1500, seed=71)
    all_readable(store, written)
    replicas = [
        ProjectionRunner(store, SharesProjection(), conninfo=settings.database_url or "", batch_size=37)
        for _ in range(2)
    ]
    # When they apply the log between them, one batch each in turn
    turns, applied_total = 0, 0
    while (applied := replicas[turns % 2].step()) > 0:
        applied_total, turns = applied_total + applied, turns + 1
    assert applied_total == written
    assert turns > 10
    followed = model(pool)
    # Then the model is the one a rebuild makes, row for row: each replica noticed that the
    # other moved the checkpoint and read back the shares it had held
    rebuild(store, SharesProjection(), window=500)
    assert model(pool) == followed


class FailsOnce(SharesProjection):
    """The shares projection, failing once after folding a batch (before its commit)."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.batches, self.fail_at = 0, fail_at

    def apply(self, conn: Any, events: Any) -> None:
        super().apply(conn, events)
        self.batches += 1
        if self.batches == self.fail_at:
            raise RuntimeError("the batch fails after its rows were folded")


def test_a_batch_that_fails_leaves_no_folded_rows_in_memory(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any]
) -> None:
    # Given a live projector whose fifth batch fails after folding (its transaction rolls back)
    written = append_histories(store, pool, 800, seed=72)
    all_readable(store, written)
    live = ProjectionRunner(store, FailsOnce(fail_at=5), conninfo=settings.database_url or "", batch_size=37)
    applied = 0
    with pytest.raises(RuntimeError):
        while (n := live.step()) > 0:
            applied += n
    # When it goes on from its checkpoint
    applied += live.catch_up_fully()
    # Then every event counts once and the model is the one a rebuild makes, row for row
    assert applied == written
    followed = model(pool)
    rebuild(store, SharesProjection(), window=500)
    assert model(pool) == followed
