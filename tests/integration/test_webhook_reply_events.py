"""Being told of replies by webhook, against a real PostgreSQL and a receiver on loopback
that verifies each request with the Standard Webhooks reference library:
``reply.received``, ``reply.answered``, ``task.overdue``, ``reply.sla_at_risk`` and
``reply.sla_breached`` each delivered once per occurrence (and ``reply.assigned`` once per
assignment), however often the deliverers
sweep and however many of them there are; their payloads as documented; an endpoint
subscribes to them by name and an unknown name is refused naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
from psycopg_pool import ConnectionPool
from standardwebhooks.webhooks import Webhook

from events.catalogue import ReplyAnswered, ResponseReceived
from events.store import EventStore
from followthrough.settings import Settings
from scheduler.domain import share as lifecycle
from scheduler.domain.share.state import new_event
from scheduler.services.share_stream import ShareStreams
from tests.support.fake_channel import FakeChannel
from tests.support.replies import caught_up
from tests.support.shares import WS, Clock, runtime
from tests.support.webhook_receiver import Receiver
from tests.support.webhooks import bearer, deliver_until, deliverer, drain, fast, projection, register
from workers.execution import execute_share

REPLY_EVENTS = ["reply.received", "reply.answered", "task.overdue", "reply.sla_at_risk", "reply.sla_breached"]


def test_reply_events_arrive_signed_once_each_with_their_documented_payloads(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], client: httpx.Client, receiver: Receiver,
    http: httpx.Client,
) -> None:
    database_url = settings.database_url or ""
    auth = bearer(database_url, WS)
    # Given an endpoint for the reply events
    endpoint = register(client, auth, receiver.url, REPLY_EVENTS)
    assert endpoint["events"] == REPLY_EVENTS
    receiver.secret = endpoint["secret"]
    account = client.post("/v1/accounts", json={"name": "main", "channel": "console"}, headers=auth).json()

    def sent(after: str, posted: timedelta) -> UUID:
        share_id = UUID(client.post("/v1/shares", headers=auth, json={
            "account_id": account["id"], "text": after, "response_plan": [
                {"kind": "answer_replies", "after": after, "owner": "alice"}]}).json()["id"])
        channel = FakeChannel(created_at=datetime.now(UTC) - posted)
        assert execute_share(runtime(pool, store, channel, clock=Clock()), share_id) == "share_sent"
        return share_id
    # And a share posted 50 minutes ago whose replies are due within the hour (10 minutes
    # from now), and one posted now whose replies are due as it is posted
    calm, pressed = sent("PT1H", timedelta(minutes=50)), sent("PT0S", timedelta(0))
    now = datetime.now(UTC)
    # And under the first a reply 40 minutes old (80 % of its time used: at risk) and one
    # 10 minutes old, answered in the network's app; under the second a reply a minute old
    # (past its due time: breached, its task overdue)
    streams = ShareStreams(store, None)
    for share_id, reply_id, ago in ((calm, "old", 40), (calm, "new", 10), (pressed, "late", 1)):
        reply = ResponseReceived(reply_id=reply_id, author=f"@{reply_id}", text=f"{reply_id}?",
                                 url=f"https://social.example/@{reply_id}/1", received_at=now - timedelta(minutes=ago))
        with pool.connection() as conn:
            streams.change(conn, share_id, lambda s, r=reply: lifecycle.receive_replies(s, [r]),  # type: ignore[misc]
                           workspace_id=WS, actor="test")
    answer = ReplyAnswered(reply_id="new", external_id="a-1", url="https://social.example/@main/2",
                           answered_at=now, native=True)
    with pool.connection() as conn:
        streams.change(conn, calm, lambda s: (new_event(calm, "answered-new", answer),), workspace_id=WS, actor="test")
    caught_up(store, database_url)
    ids = {r["text"].rstrip("?"): r["id"] for r in client.get("/v1/replies", headers=auth).json()["items"]}
    # When the webhooks projection and the deliverer catch up
    hooks, runner = deliverer(fast(settings), pool, http), projection(store, settings)

    def kinds() -> list[tuple[str, str]]:
        return sorted((r.payload["type"], r.payload["data"].get("reply_id") or r.payload["data"]["task_id"])
                      for r in receiver.accepted() if r.payload is not None)
    overdue_task = client.get(f"/v1/shares/{pressed}", headers=auth).json()["response_tasks"][0]["id"]
    expected = sorted([("reply.received", "old"), ("reply.received", "new"), ("reply.received", "late"),
                       ("reply.answered", "new"), ("reply.sla_at_risk", "old"), ("reply.sla_breached", "late"),
                       ("task.overdue", overdue_task)])
    deliver_until(hooks, runner, lambda: len(kinds()) >= len(expected), what="the reply events")
    # And they sweep again, and a second deliverer (a restart, another replica) sweeps too
    drain(hooks)
    other = deliverer(fast(settings), pool, http)
    try:
        assert other.sweep_overdue() == 0
        drain(other)
    finally:
        other.close()
        hooks.close()
    runner.catch_up()
    # Then each occurrence arrived exactly once, each with its own webhook-id, and each
    # verifies with the Standard Webhooks library (as the receiver checked before its 204)
    assert kinds() == expected
    accepted = receiver.accepted()
    assert len({r.webhook_id for r in accepted}) == len(expected)
    for got in accepted:
        assert Webhook(endpoint["secret"]).verify(got.body, got.headers) == got.payload
    by = {(r.payload["type"], r.payload["data"].get("reply_id")): r.payload for r in accepted if r.payload}
    # And their payloads are the documented ones
    received = by[("reply.received", "old")]["data"]
    assert {k: received[k] for k in ("id", "reply_id", "share_id", "author", "text", "url", "channel")} == {
        "id": ids["old"], "reply_id": "old", "share_id": str(calm), "author": "@old", "text": "old?",
        "url": "https://social.example/@old/1", "channel": "console"}
    answered = by[("reply.answered", "new")]
    assert answered["data"]["id"] == ids["new"]
    assert answered["data"]["answer"] == {"external_id": "a-1", "url": "https://social.example/@main/2",
                                          "native": True}
    assert (answered["data"]["author"], answered["data"]["text"]) == ("@new", "new?")
    assert datetime.fromisoformat(answered["data"]["answered_at"]) == now
    at_risk = by[("reply.sla_at_risk", "old")]["data"]
    task_due = client.get(f"/v1/shares/{calm}", headers=auth).json()["response_tasks"][0]["due_at"]
    assert {k: at_risk[k] for k in ("id", "share_id", "owner", "author", "text", "sla", "account_name")} == {
        "id": ids["old"], "share_id": str(calm), "owner": "alice", "author": "@old", "text": "old?",
        "sla": "at_risk", "account_name": "main"}
    assert datetime.fromisoformat(at_risk["sla_due_at"]) == datetime.fromisoformat(task_due)
    assert datetime.fromisoformat(at_risk["received_at"]) == now - timedelta(minutes=40)
    breached = by[("reply.sla_breached", "late")]
    assert breached["data"]["sla"] == "breached"
    assert breached["timestamp"] == breached["data"]["sla_due_at"]
    assert breached["data"]["post_url"] == client.get(f"/v1/shares/{pressed}", headers=auth).json()["url"]
    # And the API lists the states the events told
    listed = {r["id"]: r["sla"] for r in client.get("/v1/replies", headers=auth).json()["items"]}
    assert (listed[ids["old"]], listed[ids["late"]], listed[ids["new"]]) == ("at_risk", "breached", None)


def test_an_endpoint_subscribes_to_the_reply_events_by_name_and_an_unknown_name_is_refused(
    settings: Settings, client: httpx.Client,
) -> None:
    auth = bearer(settings.database_url or "", WS)
    listed = client.get("/v1/webhooks", headers=auth).json()
    assert {*REPLY_EVENTS, "reply.assigned"} <= set(listed["event_types"])
    refused = client.post("/v1/webhooks", headers=auth,
                          json={"url": "https://example.com/hooks", "events": ["reply.sla_breached", "reply.moved"]})
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in refused.json()["errors"]] == ["events.1"]
    assert client.get("/v1/webhooks", headers=auth).json()["webhooks"] == []


def test_each_assignment_is_told_once_signed_with_who_gave_it_to_whom(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], client: httpx.Client, receiver: Receiver,
    http: httpx.Client,
) -> None:
    database_url = settings.database_url or ""
    auth = bearer(database_url, WS, owner="carla")
    # Given an endpoint for reply.assigned, and a reply under a sent share
    endpoint = register(client, auth, receiver.url, ["reply.assigned"])
    receiver.secret = endpoint["secret"]
    account = client.post("/v1/accounts", json={"name": "main", "channel": "console"}, headers=auth).json()
    share_id = UUID(client.post("/v1/shares", headers=auth, json={
        "account_id": account["id"], "text": "assigned", "response_plan": [
            {"kind": "answer_replies", "after": "PT1H", "owner": "alice"}]}).json()["id"])
    assert execute_share(runtime(pool, store, FakeChannel(), clock=Clock()), share_id) == "share_sent"
    received = ResponseReceived(reply_id="q1", author="@dana", text="who answers?", url="https://social.example/@dana/1",
                                received_at=datetime.now(UTC))
    with pool.connection() as conn:
        ShareStreams(store, None).change(conn, share_id, lambda s: lifecycle.receive_replies(s, [received]),
                                         workspace_id=WS, actor="test")
    caught_up(store, database_url)
    reply_id = client.get("/v1/replies", headers=auth).json()["items"][0]["id"]
    # When it is assigned to bob, to bob again (no change), then to alice
    for person in ("bob", "bob", "alice"):
        answer = client.post(f"/v1/replies/{reply_id}/assign", headers=auth, json={"owner": person})
        assert answer.status_code == 200, answer.text
    hooks, runner = deliverer(fast(settings), pool, http), projection(store, settings)
    try:
        deliver_until(hooks, runner, lambda: len(receiver.accepted()) >= 2, what="the assignments told")
        # And the projection and deliverer run again (a restart)
        runner.catch_up()
        drain(hooks)
    finally:
        hooks.close()
    # Then two deliveries arrived, each verified with the Standard Webhooks library, in the
    # assignments' order once ordered by their timestamp (deliveries may arrive out of order:
    # the deliverer sends what it claims together at once, and docs/webhooks.md says so)
    accepted = receiver.accepted()
    assert len({r.webhook_id for r in accepted}) == len(accepted) == 2
    for got in accepted:
        assert Webhook(endpoint["secret"]).verify(got.body, got.headers) == got.payload
    told = sorted((r.payload for r in accepted if r.payload is not None), key=lambda p: p["timestamp"])
    assert [(p["type"], p["data"]["assignee"]) for p in told] == [("reply.assigned", "bob"),
                                                                   ("reply.assigned", "alice")]
    # And the payload is the documented one: the reply, who assigned it (the token's owner), when
    data = told[0]["data"]
    assert {k: data[k] for k in ("id", "reply_id", "share_id", "account_id", "assignee", "by", "author", "text",
                                 "channel")} == {
        "id": reply_id, "reply_id": "q1", "share_id": str(share_id), "account_id": account["id"], "assignee": "bob",
        "by": "carla", "author": "@dana", "text": "who answers?", "channel": "console"}
    assert datetime.fromisoformat(data["assigned_at"]) <= datetime.now(UTC)
