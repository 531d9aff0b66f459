"""The replies page's query reads what its page needs from indexes, not every unanswered
reply of the workspace (issue #21's speed goal; ``bench/desk.py`` measures it on 20,000)."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from psycopg_pool import ConnectionPool

from bench.desk import seed
from events.projections.replies import Q, desk_params, owners_and_people_later
from scheduler.services import workspaces
from tests.support.plans import nodes

PAGE = 51  # the page's size and one more, as the page asks
# The two reads the page made before it read both lists in one (owners_and_people): the reference.
OWNERS = "SELECT DISTINCT owner FROM rm_response_tasks WHERE workspace_id = %(ws)s ORDER BY owner"
PEOPLE = """
SELECT owner FROM rm_response_tasks WHERE workspace_id = %(ws)s
UNION
SELECT owner FROM api_tokens WHERE workspace_id = %(ws)s AND owner IS NOT NULL AND revoked_at IS NULL
UNION
SELECT assignee FROM rm_replies WHERE workspace_id = %(ws)s AND assignee IS NOT NULL
ORDER BY 1"""


def test_the_replies_page_reads_the_unanswered_newest_first_from_their_index(
    database_url: str, pool: ConnectionPool[Any]
) -> None:
    # Given a workspace of 300 shares with 10 replies each (1,800 unanswered, nearly all past
    # their due time, the newest shares' still on time), written as the projection keeps them
    assert seed(database_url, str(uuid4()), shares=300, per_share=10) == 3000
    # When the page's first page is planned and run (ten minutes' reply window: a handful
    # received within it)
    params = desk_params("bench", limit=PAGE, reply_sla_seconds=600.0)
    with pool.connection() as conn, conn.transaction():
        # A test's table is small enough to read whole: the plan with the indexes is what a
        # large one gets (bench/desk.py's EXPLAIN on 20,000), and the question is how far they are read.
        conn.execute("SET LOCAL enable_seqscan = off")
        row = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + Q["desk"], params).fetchone()
        page = conn.execute(Q["desk"], params).fetchall()
    assert row is not None
    scans = [n for n in nodes(row[0][0]["Plan"]) if n.get("Relation Name") == "rm_replies"]
    # Then the unanswered are read newest first from their index, as far as the page needs
    assert any(n.get("Index Name") == "rm_replies_unanswered_idx" and n["Node Type"] == "Index Scan"
               for n in scans), [(n["Node Type"], n.get("Index Name")) for n in scans]
    # And no read of the replies takes in more than a small part of them (the page, the
    # replies still on time, the answered and dismissed the page could show)
    read = [(n["Node Type"], n.get("Index Name"), n["Actual Rows"] * n["Actual Loops"]) for n in scans]
    assert max(rows for _, _, rows in read) <= 4 * PAGE, read
    # And the page is full, the unanswered first
    assert len(page) == PAGE
    assert {r[12] for r in page} == {"unanswered"}


def test_the_page_names_each_reply_owner_as_share_owner_does(database_url: str, pool: ConnectionPool[Any]) -> None:
    # Given shares with several tasks each: done, cancelled and open ones, due at different times
    account = str(uuid4())
    assert seed(database_url, account, shares=40, per_share=2) == 80
    with pool.connection() as conn:
        conn.execute("""
            INSERT INTO rm_response_tasks (task_id, share_id, workspace_id, account_id, account_name, channel, kind,
                                           owner, after_seconds, due_at, status, recorded_at)
            SELECT gen_random_uuid(), s.share_id, 'bench', %(account)s::uuid, 'bench', 'console', 'answer_replies',
                   'extra' || k || '-' || (row_number() OVER () %% 3), 600 * k,
                   s.sent_at + k * interval '20 minutes',
                   (ARRAY['done', 'cancelled', 'open'])[1 + (k + row_number() OVER ()) %% 3], s.sent_at
            FROM rm_shares s CROSS JOIN generate_series(1, 3) k
            WHERE s.workspace_id = 'bench'""", {"account": account})
        # When the page is read (every state: each share's replies on it)
        rows = conn.execute(Q["desk"], desk_params("bench", limit=200)).fetchall()
        owners = dict(conn.execute(
            "SELECT share_id, share_owner(share_id) FROM rm_shares WHERE workspace_id = 'bench'").fetchall())
    # Then each reply's owner is its share's, by share_owner()'s order (the query writes it out)
    assert len(rows) == 80
    assert {(r[1], r[22]) for r in rows} == {(share, owners[share]) for share in {r[1] for r in rows}}
    assert len({r[22] for r in rows}) > 3


def test_the_pages_owners_and_people_are_read_together_as_each_alone(pool: ConnectionPool[Any],
                                                                     database_url: str) -> None:
    # Given task owners, a token's owner (and a revoked token's), and replies assigned to others
    assert seed(database_url, str(uuid4()), shares=20, per_share=2) == 40
    with pool.connection() as conn:
        workspaces.create_token(conn, "bench", "write", owner="tina")
        workspaces.create_token(conn, "bench", "read", owner="rex")
        conn.execute("UPDATE api_tokens SET revoked_at = now() WHERE workspace_id = 'bench' AND owner = 'rex'")
        conn.execute("UPDATE rm_replies SET assignee = CASE WHEN network_reply_id = 'r1' THEN 'owner1' ELSE 'zed' END "
                     "WHERE share_id IN (SELECT share_id FROM rm_shares WHERE workspace_id = 'bench' LIMIT 2)")
        # When the page reads them in one query
        together = owners_and_people_later(conn, "bench")()
        alone = tuple([str(r[0]) for r in conn.execute(q, {"ws": "bench"})] for q in (OWNERS, PEOPLE))
    # Then they are the two lists as their own queries read them
    assert together == alone
    assert together == (["owner0", "owner1", "owner2", "owner3", "owner4"],
                        ["owner0", "owner1", "owner2", "owner3", "owner4", "tina", "zed"])
