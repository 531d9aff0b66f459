"""Factories for share tests against a real database: accounts, planned shares, views,
the share service and a worker runtime over a fake channel, and a clock to move."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg_pool import ConnectionPool

from events.notifier import Notifier
from events.store import EventStore
from scheduler.api.views import share_view
from scheduler.domain.media import MediaRequest
from scheduler.domain.plans import StepInput
from scheduler.services import accounts, workspaces
from scheduler.services.share_stream import ShareStreams
from scheduler.services.shares import PlanShare, ShareService
from workers.channels import Publisher, Publishers
from workers.runtime import Runtime, WorkerConfig

WS = "acme"
PLAN = [StepInput(kind="check_replies", after=timedelta(hours=1), owner="alice"),
        StepInput(kind="check_replies", after=timedelta(days=1), owner="bob")]


class Clock:
    """Now, moved by ``offset``: a test steps past a lease or a retry without sleeping."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def share_service(pool: ConnectionPool[Any], store: EventStore, notifier: Notifier | None = None,
                  clock: Callable[[], datetime] | None = None) -> ShareService:
    service = ShareService(pool=pool, streams=ShareStreams(store, notifier))
    if clock is not None:
        service.clock = clock
    return service


def runtime(pool: ConnectionPool[Any], store: EventStore, channel: Publisher, *, clock: Callable[[], datetime],
            lease_seconds: float = 5.0, max_attempts: int = 5, call_budget_seconds: float = 30.0,
            calls: Executor | None = None) -> Runtime:
    """A worker's runtime over one channel (a test makes a call lease run out with ``expire_lease``)."""
    publishers = Publishers()
    publishers.register(channel)
    config = WorkerConfig(lease_seconds=lease_seconds, max_attempts=max_attempts,
                          call_budget_seconds=call_budget_seconds)
    return Runtime(config=config, pool=pool, store=store, publishers=publishers, clock=clock, random=lambda: 0.5,
                   calls=calls)


def expire_lease(pool: ConnectionPool[Any], share_id: UUID) -> None:
    """The share's call lease runs out, as if its time had passed (a worker that died keeps it
    until then; only then may another attempt start)."""
    with pool.connection() as conn:
        conn.execute("UPDATE schedule SET lease_until = clock_timestamp() - interval '1 millisecond'"
                     " WHERE kind = 'publish' AND share_id = %s", (share_id,))


def make_account(pool: ConnectionPool[Any], **kw: Any) -> accounts.Account:
    with pool.connection() as conn:
        workspaces.ensure_workspace(conn, WS)
        return accounts.create(conn, workspace_id=WS, name=kw.pop("name", "main"), channel="console",
                               config=kw.pop("config", {}),
                               default_response_plan=None, late_policy=kw.pop("late_policy", "send"),
                               max_lateness_seconds=kw.pop("max_lateness_seconds", None))


def mastodon_account(pool: ConnectionPool[Any], base_url: str, *, name: str = "team",
                     token_env: str = "TEAM_MASTODON_TOKEN", visibility: str | None = "public") -> accounts.Account:
    """An account on the Mastodon server at ``base_url`` (the tests' fake), its token in ``token_env``."""
    config: dict[str, Any] = {"base_url": base_url, "access_token_env": token_env}
    if visibility is not None:
        config["visibility"] = visibility
    with pool.connection() as conn:
        workspaces.ensure_workspace(conn, WS)
        return accounts.create(conn, workspace_id=WS, name=name, channel="mastodon", config=config,
                               default_response_plan=None, late_policy="send", max_lateness_seconds=None)


def plan(shares: ShareService, account: accounts.Account, *, at: datetime | None = None, text: str = "hello",
         media: Sequence[MediaRequest] = ()) -> UUID:
    planned = shares.plan(WS, PlanShare(account_id=account.id, text=text, scheduled_at=at, response_plan=PLAN,
                                        media=media), actor="test")
    return planned.share_id


def view(shares: ShareService, share_id: UUID) -> dict[str, Any]:
    """The share as ``GET /v1/shares/{id}`` shows it."""
    state, history = shares.load(WS, share_id)
    return share_view(state, history, shares.clock())
