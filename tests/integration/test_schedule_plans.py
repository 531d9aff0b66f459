"""The schedule's statements keep their plans whatever the table's statistics: right after a
burst was planned the table has not been analyzed (autovacuum's naptime, or autovacuum off).
A group's writes find each share's row through its (kind, share_id) key (a plan read every
due row of the kind for each group of 50: 3.6 ms instead of 1.1 among 10,000); the
dispatcher's claims walk the due index in order (a bitmap read every entry in range)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from followthrough import bootstrap
from followthrough.settings import Settings
from scheduler.dispatch import schedule_table
from scheduler.services import call_lease, share_stream
from tests.support.plans import nodes

# A burst's worth of due posts, inserted in the test's own transaction (rolled back), never analyzed.
BURST = 10_000
GROUP = 50


def burst(conn: psycopg.Connection[Any]) -> list[UUID]:
    conn.execute("INSERT INTO schedule (workspace_id, kind, share_id, due_at) "
                 "SELECT 'plans', 'publish', gen_random_uuid(), now() FROM generate_series(1, %s)", (BURST,))
    rows = conn.execute("SELECT share_id FROM schedule WHERE kind = 'publish' LIMIT %s", (GROUP,)).fetchall()
    return [row[0] for row in rows]


def schedule_reads(plan: dict[str, Any]) -> list[tuple[str, str, str]]:
    """How the plan reads the schedule table: (node type, index, condition) of each read."""
    return [(n["Node Type"], n.get("Index Name", ""), n.get("Index Cond", n.get("Recheck Cond", "")))
            for n in nodes(plan)
            if (n.get("Relation Name") == "schedule" and n["Node Type"] != "ModifyTable")
            or n.get("Index Name", "").startswith("schedule_")]


def assert_found_by_key(plan: dict[str, Any]) -> None:
    reads = schedule_reads(plan)
    assert reads, plan
    for node, index, cond in reads:
        # Each read of the table is a look-up by key: (kind, share_id), or the row's id
        assert node != "Seq Scan", reads
        if index == "schedule_kind_share_key":
            assert "share_id" in cond, reads
        elif index:
            assert index == "schedule_pkey", reads
            assert "(id = " in cond, reads


@pytest.mark.parametrize("statement", ["claim", "remove_many"])
def test_a_group_s_schedule_writes_look_each_share_up_by_its_key(
    pool: ConnectionPool[Any], statement: str
) -> None:
    with pool.connection() as conn, conn.transaction(force_rollback=True):
        share_ids = burst(conn)
        if statement == "claim":
            sql, params = call_lease.Q["claim"], {
                "kind": "publish", "share_ids": share_ids, "attempts": [1] * len(share_ids),
                "budget": 30.0, "same_attempt": False}
        else:
            sql, params = share_stream.Q["remove_many"], {"kind": "publish", "share_ids": share_ids}
        row = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params).fetchone()
        assert row is not None
        plan = row[0][0]["Plan"]
        assert_found_by_key(plan)
        # and it did its work: every share of the group was written
        written = plan["Actual Rows"] if statement == "claim" else next(
            n["Actual Rows"] for n in nodes(plan) if n.get("Index Name") == "schedule_pkey")
        assert written == GROUP


def test_the_dispatcher_s_claims_walk_the_due_index_in_order_on_a_table_filled_by_a_burst(
    settings: Settings,
) -> None:
    # Given 10,000 posts due, 7,000 of them already handed out (their entries in the index of
    # unleased rows dead until a vacuum), on a table not analyzed since: the dispatcher's own
    # connections, as `followthrough dispatcher` opens them
    with bootstrap.dispatcher(settings) as built, built.pool.connection() as conn, \
            conn.transaction(force_rollback=True):
        conn.execute("INSERT INTO schedule (workspace_id, kind, share_id, due_at) "
                     "SELECT 'plans', 'publish', gen_random_uuid(), now() - interval '20 s' + g * interval '1 ms' "
                     "FROM generate_series(1, %s) AS g", (BURST,))
        conn.execute("UPDATE schedule SET lease_until = now() + interval '1 hour' WHERE id IN "
                     "(SELECT id FROM schedule WHERE kind = 'publish' ORDER BY due_at LIMIT %s)", (7_000,))
        plans = {
            name: conn.execute("EXPLAIN (FORMAT JSON) " + schedule_table.Q[name], params).fetchone()
            for name, params in (
                ("claim_due", {"limit": 500, "lease_seconds": 30.0, "lead_seconds": 0.15}),
                ("next_wakeup", {"lead_seconds": 0.15}),
            )
        }
    # Then both read the schedule's indexes in order (a claim stops at its limit, the wake-up
    # at the first post), never a bitmap of every entry in range
    for name, row in plans.items():
        assert row is not None
        reads = schedule_reads(row[0][0]["Plan"])
        assert not [r for r in reads if r[0].startswith("Bitmap")], (name, reads)
        # (the wake-up reads only the indexed column: an index-only scan is as good)
        walks = {"Index Scan", "Index Only Scan"} if name == "next_wakeup" else {"Index Scan"}
        assert [r for r in reads if r[0] in walks and r[1] == "schedule_due_idx"], (name, reads)
