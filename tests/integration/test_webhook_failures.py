"""Webhooks out when receivers fail: a failing endpoint probed one delivery at a time and
disabled when it keeps failing, a deliverer that dies mid-attempt, a secret that cannot be
opened, and settled deliveries forgotten after the retention."""

from __future__ import annotations

import time
from typing import Any

import httpx
from psycopg_pool import ConnectionPool
from pydantic import SecretStr
from structlog.testing import capture_logs

from events.store import EventStore
from followthrough import webhooks
from followthrough.settings import Settings
from scheduler.services import webhook_outbox as outbox
from scheduler.services.webhook_secrets import generate_key
from tests.support.fake_channel import FakeChannel
from tests.support.shares import WS, Clock, make_account, plan, runtime, share_service
from tests.support.system import wait_until
from tests.support.webhook_receiver import Receiver
from tests.support.webhooks import bearer, deliver_until, deliverer, drain, fast, projection, register, settle
from workers.execution import execute_share


def test_an_endpoint_that_keeps_failing_is_disabled_and_says_so(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], client: httpx.Client, receiver: Receiver,
    http: httpx.Client,
) -> None:
    # Given an endpoint disabled after 3 consecutive failures, whose receiver always fails
    auth = bearer(settings.database_url or "", WS)
    endpoint = register(client, auth, receiver.url, ["share.sent"])
    receiver.secret, receiver.fail_always = endpoint["secret"], True
    shares = share_service(pool, store)
    execute_share(runtime(pool, store, FakeChannel(), clock=Clock()), plan(shares, make_account(pool)))
    hooks = deliverer(fast(settings, webhook_disable_after_failures=3), pool, http)
    runner = projection(store, settings)

    def state() -> str:
        return str(client.get(f"/v1/webhooks/{endpoint['id']}", headers=auth).json()["state"])

    # When the deliverer keeps trying
    with capture_logs() as logs:
        deliver_until(hooks, runner, lambda: state() == "disabled", what="the endpoint to be disabled")
        time.sleep(0.3)
        drain(hooks)
    # Then it stopped after the third attempt, and the endpoint says why
    assert len(receiver.requests) == 3
    shown = client.get("/v1/webhooks", headers=auth).json()["webhooks"][0]
    assert shown["state"] == "disabled"
    assert shown["disabled_reason"] == "3 consecutive failed attempts"
    assert shown["consecutive_failures"] == 3
    assert shown["last_delivery"]["http_status"] == 500
    assert [e["endpoint_id"] for e in logs if e["event"] == "webhook_endpoint_disabled"] == [endpoint["id"]]
    metrics = client.get("/metrics").text
    assert 'followthrough_webhook_endpoints{state="disabled"} 1.0' in metrics
    assert 'followthrough_webhook_deliveries{status="pending"} 1.0' in metrics
    # And enabled again after the receiver is fixed, the waiting delivery goes out
    receiver.fail_always = False
    enabled = client.post(f"/v1/webhooks/{endpoint['id']}/enable", headers=auth).json()
    assert (enabled["state"], enabled["consecutive_failures"]) == ("enabled", 0)
    deliver_until(hooks, runner, receiver.accepted, what="the delivery after enabling")
    assert receiver.types() == ["share.sent"]


def test_a_failing_receiver_is_probed_with_one_delivery_at_a_time_and_its_recovery_lets_the_rest_go(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], client: httpx.Client, receiver: Receiver,
    http: httpx.Client,
) -> None:
    # Given a receiver that is down, and a first delivery that failed (an hour's pause)
    auth = bearer(settings.database_url or "", WS)
    endpoint = register(client, auth, receiver.url, ["share.sent"])
    receiver.secret, receiver.fail_always = endpoint["secret"], True
    shares, account = share_service(pool, store), make_account(pool)
    rt = runtime(pool, store, FakeChannel(), clock=Clock())
    execute_share(rt, plan(shares, account))
    hooks = deliverer(fast(settings, webhook_retry_base_seconds=3600.0), pool, http)
    runner = projection(store, settings)
    deliver_until(hooks, runner, lambda: receiver.requests, what="the first failed attempt")
    paused = client.get(f"/v1/webhooks/{endpoint['id']}", headers=auth).json()
    assert paused["paused_until"] is not None
    # When three more shares are sent while it is paused
    for _ in range(3):
        execute_share(rt, plan(shares, account))

    settle(runner, pool)
    drain(hooks)
    # Then nothing goes to it during the pause
    assert len(receiver.requests) == 1

    def pause_over() -> None:
        with pool.connection() as conn:
            conn.execute("UPDATE webhook_endpoints SET paused_until = now()")

    # And after the pause one delivery probes it, not all four
    pause_over()
    drain(hooks)
    assert [r.answered for r in receiver.requests] == [500, 500]
    # When it answers again, the probe succeeds and every waiting event follows, once each
    receiver.fail_always = False
    pause_over()
    with pool.connection() as conn:
        conn.execute("UPDATE webhook_deliveries SET due_at = now() WHERE status = 'pending'")
    drain(hooks)
    assert receiver.types() == ["share.sent"] * 4
    assert len({r.webhook_id for r in receiver.accepted()}) == 4
    shown = client.get(f"/v1/webhooks/{endpoint['id']}", headers=auth).json()
    assert (shown["state"], shown["consecutive_failures"], shown["paused_until"]) == ("enabled", 0, None)


def test_a_secret_no_configured_key_opens_fails_the_attempt_saying_why_and_old_deliveries_are_pruned(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], client: httpx.Client, receiver: Receiver,
    http: httpx.Client,
) -> None:
    # Given an endpoint registered under one key, and a deliverer holding another
    auth = bearer(settings.database_url or "", WS)
    endpoint = register(client, auth, receiver.url, ["share.sent"])
    execute_share(runtime(pool, store, FakeChannel(), clock=Clock()),
                  plan(share_service(pool, store), make_account(pool)))
    other_key = SecretStr(generate_key())
    hooks = deliverer(fast(settings, webhook_secret_keys=other_key, webhook_retry_base_seconds=3600.0), pool, http)
    runner = projection(store, settings)
    # When it tries to deliver
    def attempted() -> bool:
        shown = client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=auth).json()["deliveries"]
        return bool(shown and shown[0]["attempts"])

    deliver_until(hooks, runner, attempted, what="an attempt")
    # Then nothing unsigned left, and the attempt says why
    assert receiver.requests == []
    [delivery] = client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=auth).json()["deliveries"]
    assert delivery["last_error"].startswith("cannot sign: no configured key opens this secret")
    # And once settled and older than the retention, the delivery is forgotten
    with pool.connection() as conn:
        conn.execute("UPDATE webhook_deliveries SET status = 'failed', created_at = now() - interval '31 days'")
    hooks.sweep_overdue()
    assert client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=auth).json()["deliveries"] == []


def test_a_delivery_whose_deliverer_died_mid_attempt_goes_out_again_with_the_same_id(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], client: httpx.Client, receiver: Receiver,
    http: httpx.Client,
) -> None:
    # Given a delivery claimed by a deliverer that then died (its lease is short here)
    auth = bearer(settings.database_url or "", WS)
    endpoint = register(client, auth, receiver.url, ["share.sent"])
    receiver.secret = endpoint["secret"]
    execute_share(runtime(pool, store, FakeChannel(), clock=Clock()),
                  plan(share_service(pool, store), make_account(pool)))
    runner = projection(store, settings)
    settle(runner, pool)
    with pool.connection() as conn:
        [lost] = outbox.claim(conn, limit=10, lease_seconds=0.3)
    hooks = deliverer(fast(settings), pool, http)
    # When another deliverer runs: nothing while the lease holds, then the delivery once
    drain(hooks)
    assert receiver.requests == []
    wait_until(lambda: drain(hooks) or receiver.accepted(), timeout=20, what="the delivery after the lease")
    # Then the receiver got it once, under the id the dead attempt would have used
    [got] = receiver.accepted()
    assert got.webhook_id == f"msg_{lost.id.hex}"
    [delivery] = client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=auth).json()["deliveries"]
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 2)  # the dead one counts as tried


def test_the_deliverers_client_never_sends_on_a_connection_the_receiver_may_be_closing(receiver: Receiver) -> None:
    # Given the webhook deliverer's own client, and a receiver that closes a connection idle
    # for 5 s (uvicorn's default, as this one's): a request on a connection reused as it closes
    # fails with "server disconnected" before the receiver saw it, a failed attempt for nothing
    with webhooks.client(Settings()) as http:
        # When it sends twice a moment apart, then once more after 4.5 s of quiet
        for body in (b"one", b"two"):
            http.post(receiver.url, content=body)
        time.sleep(4.5)
        http.post(receiver.url, content=b"three")
    # Then the second request reuses the first's connection, and the third opens one of its own
    ports = [r.client_port for r in receiver.requests]
    assert len(ports) == 3
    assert ports[1] == ports[0]
    assert ports[2] != ports[1]
