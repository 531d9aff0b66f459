"""Webhooks out against a real PostgreSQL and a receiver on loopback: signed per the
Standard Webhooks specification, delivered at least once with a stable id, retried from
the database, per workspace, stopped by deletion, disabled when a receiver keeps failing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from psycopg_pool import ConnectionPool
from structlog.testing import capture_logs

from events.catalogue import ResponseReceived
from events.projections.runner import ProjectionRunner
from events.projections.shares import SharesProjection
from events.records import NewEvent, metadata
from events.store import EventStore
from followthrough.settings import Settings
from scheduler.domain.plans import StepInput
from scheduler.services import accounts
from scheduler.services.shares import PlanShare, ShareService
from tests.support.fake_channel import FakeChannel
from tests.support.shares import WS, Clock, make_account, plan, runtime, share_service, view
from tests.support.webhook_receiver import Receiver, receiving
from tests.support.webhooks import bearer, deliver_until, deliverer, drain, fast, projection, register, settle
from workers.execution import execute_share


def test_a_registered_endpoint_gets_signed_events_that_verify_with_the_standard_webhooks_library(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], client: httpx.Client, receiver: Receiver,
    http: httpx.Client,
) -> None:
    # Given an endpoint registered through the API (its secret shown in that answer only)
    auth = bearer(settings.database_url or "", WS)
    endpoint = register(client, auth, receiver.url, ["share.sent"])
    assert endpoint["secret"].startswith("whsec_")
    assert endpoint["state"] == "enabled"
    receiver.secret = endpoint["secret"]
    listed = client.get("/v1/webhooks", headers=auth).json()["webhooks"]
    assert [e["id"] for e in listed] == [endpoint["id"]]
    assert "secret" not in listed[0]
    assert endpoint["secret"] not in client.get(f"/v1/webhooks/{endpoint['id']}", headers=auth).text
    with pool.connection() as conn:
        [(stored,)] = conn.execute("SELECT secret FROM webhook_endpoints").fetchall()
    assert stored.startswith("fernet:")  # sealed at rest
    assert endpoint["secret"].removeprefix("whsec_") not in stored
    # When a share is sent and the projection and deliverer catch up
    shares = share_service(pool, store)
    share_id = plan(shares, make_account(pool))
    assert execute_share(runtime(pool, store, FakeChannel(), clock=Clock()), share_id) == "share_sent"
    hooks, runner = deliverer(fast(settings), pool, http), projection(store, settings)
    deliver_until(hooks, runner, receiver.accepted, what="the share.sent delivery")
    # Then the receiver verified the signature and got the share's details
    [got] = receiver.accepted()
    assert got.payload is not None
    assert got.payload["type"] == "share.sent"
    assert got.payload["data"]["share_id"] == str(share_id)
    assert got.payload["data"]["url"] == view(shares, share_id)["url"]
    assert got.payload["data"]["channel"] == "console"
    assert got.webhook_id.startswith("msg_")
    assert got.headers["webhook-signature"].startswith("v1,")
    # And the API shows the delivery and its one attempt
    [listed_after] = client.get("/v1/webhooks", headers=auth).json()["webhooks"]
    assert listed_after["last_delivery"]["status"] == "delivered"
    assert listed_after["last_delivery"]["http_status"] == 204
    [delivery] = client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=auth).json()["deliveries"]
    assert (delivery["id"], delivery["status"], delivery["attempts"]) == (got.webhook_id, "delivered", 1)
    assert [a["http_status"] for a in delivery["attempt_log"]] == [204]
    # And /metrics counts it
    metrics = client.get("/metrics").text
    assert 'followthrough_webhook_deliveries{status="delivered"} 1.0' in metrics
    assert "followthrough_webhook_deliveries_due 0.0" in metrics


def test_a_receiver_that_fails_twice_then_succeeds_gets_the_event_exactly_once_more(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], client: httpx.Client, receiver: Receiver,
    http: httpx.Client,
) -> None:
    # Given an endpoint whose receiver answers 500 twice
    auth = bearer(settings.database_url or "", WS)
    endpoint = register(client, auth, receiver.url, ["share.sent"])
    receiver.secret = endpoint["secret"]
    receiver.fail_next = 2
    shares = share_service(pool, store)
    share_id = plan(shares, make_account(pool))
    execute_share(runtime(pool, store, FakeChannel(), clock=Clock()), share_id)
    hooks, runner = deliverer(fast(settings), pool, http), projection(store, settings)
    # When the deliverer runs until the receiver has taken the event
    with capture_logs() as logs:
        deliver_until(hooks, runner, receiver.accepted, what="the third attempt")
        # and keeps running past several retry intervals
        for _ in range(5):
            time.sleep(0.1)
            runner.catch_up()
            drain(hooks)
    # Then: 3 attempts of the same message, 1 success, nothing after it
    assert [r.answered for r in receiver.requests] == [500, 500, 204]
    assert len({r.webhook_id for r in receiver.requests}) == 1
    assert all(r.payload is not None for r in receiver.requests)  # every attempt signed afresh and valid
    [delivery] = client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=auth).json()["deliveries"]
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 3)
    assert [a["http_status"] for a in delivery["attempt_log"]] == [500, 500, 204]
    # And the logs say so, per attempt, without the secret
    failed = [e for e in logs if e["event"] == "webhook_delivery_failed"]
    delivered = [e for e in logs if e["event"] == "webhook_delivered"]
    assert [(e["attempt"], e["status"]) for e in failed] == [(1, 500), (2, 500)]
    assert [(e["attempt"], e["status"], e["endpoint_id"]) for e in delivered] == [(3, 204, endpoint["id"])]
    assert delivered[0]["event_id"] == delivery["event_id"]
    # And each line names the endpoint and the receiver's host
    assert {(e["endpoint_id"], e["host"]) for e in failed + delivered} == {(endpoint["id"], "127.0.0.1")}
    assert endpoint["secret"] not in repr(logs)
    assert endpoint["secret"].removeprefix("whsec_") not in repr(logs)


def plan_with(shares: ShareService, account: accounts.Account, *, after: timedelta = timedelta(hours=1),
              at: datetime | None = None) -> UUID:
    """A share with one response step ``after`` its publication (``PT0S``: due as it is sent)."""
    command = PlanShare(account_id=account.id, text="hello", scheduled_at=at,
                        response_plan=[StepInput(kind="check_replies", after=after, owner="alice")])
    return shares.plan(WS, command, actor="test").share_id


# The log's events a receiver is told about, by their webhook names (the catalogue's names
# are the log's; these are the documented ones).
TOLD = {"ShareSent": "share.sent", "ShareFailed": "share.failed", "ShareAbandoned": "share.abandoned",
        "ShareHeld": "share.held", "ResponseReceived": "reply.received"}


def test_every_lifecycle_change_of_a_run_of_shares_arrives_once(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], client: httpx.Client, receiver: Receiver,
    http: httpx.Client,
) -> None:
    # Given an endpoint for every event type, and a run of shares on the console channel:
    # sent at once (its task due as it is sent), retried then sent, failed for good,
    # abandoned after its last attempt, held for being too late, and a reply received
    auth = bearer(settings.database_url or "", WS)
    receiver.secret = register(client, auth, receiver.url)["secret"]
    shares, clock = share_service(pool, store), Clock()
    account = make_account(pool)
    careful = make_account(pool, name="careful", late_policy="hold", max_lateness_seconds=60)
    scripts = {
        plan_with(shares, account, after=timedelta(0)): [["ok"]],
        plan_with(shares, account): [["transient"], ["ok"]],
        plan_with(shares, account): [["permanent"]],
        plan_with(shares, account): [["transient"], ["transient"], ["transient"]],
        plan_with(shares, careful, at=datetime.now(UTC) - timedelta(minutes=4)): [["ok"]],
    }
    for share_id, attempts in scripts.items():
        for hours, script in enumerate(attempts):
            clock.offset = timedelta(hours=hours)
            execute_share(runtime(pool, store, FakeChannel(script=script), clock=clock, max_attempts=3), share_id)
    first = next(iter(scripts))
    reply = ResponseReceived(reply_id="r1", author="@carol", text="Nice!", received_at=datetime.now(UTC))
    store.append(f"share-{first}", [NewEvent(reply, metadata=metadata(workspace_id=WS, actor="test"))],
                 expected_version=None, workspace_id=WS)
    # When the read models and the deliverer catch up (the deliverer sweeping more than once)
    told = [(TOLD[r.type_name], str(share_id))
            for share_id in scripts for r in store.read_stream(f"share-{share_id}") if r.type_name in TOLD]
    expected = sorted([*told, ("task.overdue", str(first))])
    shares_runner = ProjectionRunner(store, SharesProjection(), conninfo=settings.database_url or "")
    hooks, runner = deliverer(fast(settings), pool, http), projection(store, settings)

    def received() -> list[tuple[str, str]]:
        shares_runner.catch_up()
        return sorted((r.payload["type"], r.payload["data"]["share_id"]) for r in receiver.accepted()
                      if r.payload is not None)

    deliver_until(hooks, runner, lambda: len(received()) >= len(expected), what="every lifecycle event")
    drain(hooks)
    drain(hooks)
    # Then each lifecycle change arrived exactly once, each kind of change represented
    assert received() == expected
    assert {kind for kind, _ in expected} == set(TOLD.values()) | {"task.overdue"}
    assert len({r.webhook_id for r in receiver.accepted()}) == len(expected)
    overdue = next(r.payload for r in receiver.accepted() if r.payload and r.payload["type"] == "task.overdue")
    assert overdue["data"]["owner"] == "alice"
    assert overdue["data"]["task_id"] == view(shares, first)["response_tasks"][0]["id"]


def test_a_second_workspace_never_receives_the_first_workspaces_events(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], client: httpx.Client, http: httpx.Client,
) -> None:
    # Given two workspaces, each with an endpoint for every event type
    with receiving() as ours, receiving() as theirs:
        our_auth = bearer(settings.database_url or "", WS)
        their_auth = bearer(settings.database_url or "", "globex")
        ours.secret = register(client, our_auth, ours.url)["secret"]
        theirs.secret = register(client, their_auth, theirs.url)["secret"]
        # When a share of the first workspace is sent (and one is planned in the second)
        shares = share_service(pool, store)
        share_id = plan(shares, make_account(pool))
        execute_share(runtime(pool, store, FakeChannel(), clock=Clock()), share_id)
        with pool.connection() as conn:
            other = accounts.create(conn, workspace_id="globex", name="theirs", channel="console", config={},
                                    default_response_plan=None, late_policy="send", max_lateness_seconds=None)
        hooks, runner = deliverer(fast(settings), pool, http), projection(store, settings)
        deliver_until(hooks, runner, ours.accepted, what="the first workspace's delivery")
        drain(hooks)
        # Then only the first workspace's endpoint heard of it
        assert ours.types() == ["share.sent"]
        assert theirs.requests == []
        # And neither workspace sees or deletes the other's endpoints
        [their_endpoint] = client.get("/v1/webhooks", headers=their_auth).json()["webhooks"]
        assert [e["url"] for e in client.get("/v1/webhooks", headers=our_auth).json()["webhooks"]] == [ours.url]
        assert client.delete(f"/v1/webhooks/{their_endpoint['id']}", headers=our_auth).status_code == 404
        assert client.get(f"/v1/webhooks/{their_endpoint['id']}/deliveries", headers=our_auth).status_code == 404
        assert other.workspace_id == "globex"


def test_deleting_an_endpoint_stops_its_deliveries(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], client: httpx.Client, receiver: Receiver,
    http: httpx.Client,
) -> None:
    # Given an endpoint whose receiver is failing, with a delivery waiting for its retry
    auth = bearer(settings.database_url or "", WS)
    endpoint = register(client, auth, receiver.url, ["share.sent"])
    receiver.secret, receiver.fail_always = endpoint["secret"], True
    shares, account = share_service(pool, store), make_account(pool)
    execute_share(runtime(pool, store, FakeChannel(), clock=Clock()), plan(shares, account))
    hooks = deliverer(fast(settings, webhook_retry_base_seconds=3600.0), pool, http)
    runner = projection(store, settings)
    deliver_until(hooks, runner, lambda: receiver.requests, what="a first failed attempt")
    # When the endpoint is deleted, the receiver recovers, and another share is sent
    assert client.delete(f"/v1/webhooks/{endpoint['id']}", headers=auth).status_code == 204
    receiver.fail_always = False
    execute_share(runtime(pool, store, FakeChannel(), clock=Clock()), plan(shares, account))
    settle(runner, pool)
    with pool.connection() as conn:
        conn.execute("UPDATE webhook_deliveries SET due_at = now()")  # the retry's time, brought forward
    drain(hooks)
    # Then nothing more was sent to it, and it is gone from the API
    assert len(receiver.requests) == 1
    assert client.get("/v1/webhooks", headers=auth).json()["webhooks"] == []
    assert client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=auth).status_code == 404
    assert client.delete(f"/v1/webhooks/{endpoint['id']}", headers=auth).status_code == 404
    with pool.connection() as conn:
        statuses = conn.execute("SELECT status, count(*) FROM webhook_deliveries GROUP BY 1").fetchall()
    assert statuses == [("cancelled", 1)]
    with pool.connection() as conn:
        assert conn.execute("SELECT secret FROM webhook_endpoints").fetchall() == [("",)]  # wiped


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://example.com/hooks", "events": ["share.sent"]}, "url"),
        ({"url": "ftp://127.0.0.1/hooks", "events": ["share.sent"]}, "url"),
        ({"url": "https://user:pw@example.com/hooks", "events": ["share.sent"]}, "url"),
        ({"url": "not a url", "events": ["share.sent"]}, "url"),
        ({"url": "https://example.com/hooks", "events": []}, "events"),
        ({"url": "https://example.com/hooks", "events": ["share.sent", "share.bogus"]}, "events.1"),
        ({"url": "https://example.com/hooks"}, "events"),
        ({"url": "https://example.com/hooks", "events": ["share.sent"], "secret": "mine"}, "secret"),
    ],
)
def test_a_bad_registration_is_refused_naming_the_field_and_stores_nothing(
    settings: Settings, pool: ConnectionPool[Any], client: httpx.Client, body: dict[str, Any], field: str,
) -> None:
    auth = bearer(settings.database_url or "", WS)
    response = client.post("/v1/webhooks", json=body, headers=auth)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in [e["field"] for e in response.json()["errors"]]
    with pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM webhook_endpoints").fetchone() == (0,)


def test_registering_needs_a_write_token_and_reading_a_read_token(
    settings: Settings, client: httpx.Client,
) -> None:
    reader = bearer(settings.database_url or "", WS, "read")
    refused = client.post("/v1/webhooks", json={"url": "https://example.com/h", "events": ["share.sent"]},
                          headers=reader)
    assert refused.status_code == 403
    assert client.get("/v1/webhooks", headers=reader).status_code == 200
    assert client.get("/v1/webhooks").status_code == 401
