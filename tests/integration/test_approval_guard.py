"""The invariant, grown: never published without approval where approval is required. The
database refuses the first write of a publish (the attempt's append) for a share in review or
rejected, and the audit flags a share published without approval when the guard is bypassed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from events.catalogue import ShareAttemptStarted
from events.records import NewEvent
from events.store import EventStore
from followthrough.settings import Settings
from scheduler.domain import share
from scheduler.services import accounts, workspaces
from scheduler.services.audit import audit
from scheduler.services.shares import PlanShare
from tests.support.approval import APPROVAL, publish_by_hand
from tests.support.fake_channel import FakeChannel
from tests.support.replies import catch_up
from tests.support.shares import PLAN, WS, Clock, runtime, share_service
from workers.execution import execute_share

FT_APPROVAL = "FT003"


def reviewed_account(pool: ConnectionPool[Any]) -> accounts.Account:
    with pool.connection() as conn:
        workspaces.ensure_workspace(conn, WS)
        return accounts.create(conn, workspace_id=WS, name="team", channel="console", config={"approval": APPROVAL},
                               default_response_plan=None, late_policy="send", max_lateness_seconds=None)


def attempt_by_hand(store: EventStore, share_id: UUID) -> None:
    """An attempt appended straight to the log, as a worker's would be, whatever the share's state."""
    stream = share.stream_id(share_id)
    version = len(store.read_stream(stream))
    attempt = ShareAttemptStarted(attempt=1, started_at=datetime.now(UTC), idempotency_key="k")
    store.append(stream, [NewEvent(attempt)], expected_version=version, workspace_id=WS)


def test_the_database_refuses_a_publish_attempt_of_a_share_without_a_standing_approval(
    store: EventStore, pool: ConnectionPool[Any],
) -> None:
    # Given ana's share in review
    shares = share_service(pool, store)
    account = reviewed_account(pool)
    share_id = shares.plan(WS, PlanShare(account_id=account.id, text="hi", scheduled_at=None, response_plan=PLAN),
                           actor="ana").share_id
    # When an attempt is appended past the domain's decision: refused by the database
    with pytest.raises(psycopg.Error) as refused:
        attempt_by_hand(store, share_id)
    assert refused.value.sqlstate == FT_APPROVAL
    # And after a rejection too
    shares.reject(WS, share_id, reason="not yet", actor="ben")
    with pytest.raises(psycopg.Error) as again:
        attempt_by_hand(store, share_id)
    assert again.value.sqlstate == FT_APPROVAL
    # And after an approval undone by a change of time
    shares.reschedule(WS, share_id, datetime.now(UTC) + timedelta(minutes=1), actor="ana")
    shares.approve(WS, share_id, actor="ben")
    shares.reschedule(WS, share_id, datetime.now(UTC) + timedelta(minutes=2), actor="ana")
    with pytest.raises(psycopg.Error) as changed:
        attempt_by_hand(store, share_id)
    assert changed.value.sqlstate == FT_APPROVAL
    # When ben approves it again, the attempt goes in
    shares.approve(WS, share_id, actor="ben")
    attempt_by_hand(store, share_id)


def test_shares_that_need_no_approval_pass_the_guard(store: EventStore, pool: ConnectionPool[Any]) -> None:
    shares = share_service(pool, store)
    with pool.connection() as conn:
        workspaces.ensure_workspace(conn, WS)
        account = accounts.create(conn, workspace_id=WS, name="free", channel="console", config={},
                                  default_response_plan=None, late_policy="send", max_lateness_seconds=None)
    share_id = shares.plan(WS, PlanShare(account_id=account.id, text="hi", scheduled_at=None, response_plan=PLAN),
                           actor="ana").share_id
    attempt_by_hand(store, share_id)


def test_the_audit_flags_a_share_published_without_approval_when_the_guard_is_bypassed(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any],
) -> None:
    # Given two shares in review: one approved and published by a worker, one left in review
    shares = share_service(pool, store)
    account = reviewed_account(pool)
    planned = [shares.plan(WS, PlanShare(account_id=account.id, text=text, scheduled_at=None, response_plan=PLAN),
                           actor="ana").share_id for text in ("approved", "unapproved")]
    shares.approve(WS, planned[0], actor="ben")
    assert execute_share(runtime(pool, store, FakeChannel(), clock=Clock()), planned[0]) == "share_sent"
    catch_up(store, settings.database_url or "")
    assert audit_of(settings).clean
    # When someone publishes the other by hand, with the guards off in their transaction
    publish_by_hand(settings.database_url or "", planned[1])
    catch_up(store, settings.database_url or "")
    # Then the audit flags that share, and that share only, published without approval
    found = audit_of(settings)
    assert not found.clean
    [workspace] = found.workspaces.values()
    assert [(v.share_id, v.rule) for v in workspace.violations] == [
        (str(planned[1]), "ShareSent without an approval before it (its account required one)")]
    assert workspace.differences_total == 0  # the read model agrees with the log; the log breaks the rule
    # And the guards are on again for everyone else
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        rows = conn.execute("SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'events'::regclass"
                            " AND tgname IN ('events_first_write', 'events_approval_guard') ORDER BY tgname").fetchall()
    assert rows == [("events_approval_guard", "A"), ("events_first_write", "A")]


def audit_of(settings: Settings) -> Any:
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        return audit(conn, workspace_id=WS)
