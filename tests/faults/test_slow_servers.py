"""Exactly once on slow, hostile servers, through the real roles (`followthrough up`, real
PostgreSQL, Redis or RabbitMQ) and a fake Mastodon in its own process that answers every
post seconds late, ignores `Idempotency-Key` and (for followers-only posts) hides the
account's posts from look-ups. Worker processes are SIGKILLed twice during the run.

Afterwards the server itself counts exactly one post per share; every sent share's
`sent_at` is its post's creation time; nothing was sent without its tasks; no duplicate.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.crashes import kill_worker_processes
from tests.support.database import connect, delete_rabbit_queues
from tests.support.fake_mastodon_process import fake_mastodon
from tests.support.media import png, uploaded
from tests.support.servers import free_port
from tests.support.system import System, running, wait_until
from workers.actors import queue_names

pytestmark = [pytest.mark.faults, pytest.mark.slow]

SHARES = 100
SLOW_SHARES = 4
TOKEN_ENV = "FAKE_MASTODON_TOKEN"
TOKEN = "mastodon-token-5ecret-0f-the-team"  # the fake's default
ENV = {
    TOKEN_ENV: TOKEN,
    "FOLLOWTHROUGH_WORKER_PROCESSES": "2",
    "FOLLOWTHROUGH_WORKER_THREADS": "4",
    "FOLLOWTHROUGH_WORKER_SHUTDOWN_SECONDS": "5",
    "FOLLOWTHROUGH_RESTART_BACKOFF_MAX_SECONDS": "2",
    # One request's answer waits at most 10 s: a post answered 35 s late times out, its outcome unknown.
    "FOLLOWTHROUGH_CHANNEL_TIMEOUT_SECONDS": "10",
    "FOLLOWTHROUGH_RETRY_BASE_SECONDS": "3",
    "FOLLOWTHROUGH_MAX_ATTEMPTS": "8",
}


def plan_all(api: httpx.Client, account: str, texts: list[str], due: datetime) -> list[str]:
    ids = []
    for text in texts:
        body = {"account_id": account, "text": text, "scheduled_at": due.isoformat(),
                "response_plan": [{"kind": "check_replies", "after": "PT1H", "owner": "alice"}]}
        answer = api.post("/v1/shares", json=body)
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    return ids


def settled(api: httpx.Client, ids: list[str]) -> list[dict[str, Any]] | None:
    shares = [api.get(f"/v1/shares/{i}").json() for i in ids]
    return shares if all(s["status"] in ("sent", "held") for s in shares) else None


def run(tmp_path: Path, database_url: str, broker_url: str, queue_prefix: str, *, visibility: str,
        mastodon_flags: tuple[str, ...]) -> tuple[list[dict[str, Any]], dict[str, Any], System]:
    with fake_mastodon(free_port(), "--latency", "3", "--ignore-idempotency-key", *mastodon_flags) as mastodon, \
            running(tmp_path, database_url=database_url, broker_url=broker_url, queue_prefix=queue_prefix,
                    extra_env=ENV) as system:
        token = system.cli("token", "create", "--workspace", "default", "--scope", "write")
        with system.client(token) as api:
            config = {"base_url": mastodon, "access_token_env": TOKEN_ENV, "visibility": visibility}
            account = api.post("/v1/accounts", json={"name": "team", "channel": "mastodon", "config": config})
            assert account.status_code == 201, account.text
            account_id = account.json()["id"]
            # Given 100 shares due within the same second, on a server answering every post 3 s late
            due = datetime.now(UTC) + timedelta(seconds=8)
            ids = plan_all(api, account_id, [f"launch note {i}" for i in range(SHARES)], due)
            # When the worker processes are SIGKILLed while the posts are in flight
            wait_until(lambda: httpx.get(f"{mastodon}/_fake/stats").json()["posts"] >= 10, timeout=60,
                       what="posts in flight")
            assert kill_worker_processes(system) > 0
            # And a few more fall due on a server answering 35 s late (past every timeout and lease)
            httpx.post(f"{mastodon}/_fake/knobs", json={"latency": 35})
            slow = plan_all(api, account_id, [f"slow note {i}" for i in range(SLOW_SHARES)],
                            datetime.now(UTC) + timedelta(seconds=2))
            wait_until(lambda: httpx.get(f"{mastodon}/_fake/stats").json()["by_text"].get("slow note 0"),
                       timeout=60, what="a slow post to be made")
            assert kill_worker_processes(system) > 0
            httpx.post(f"{mastodon}/_fake/knobs", json={"latency": 3})
            # Then every share ends sent or held
            shares = wait_until(lambda: settled(api, ids + slow), timeout=300, interval=1.0,
                                what="every share to be sent or held")
            stats = httpx.get(f"{mastodon}/_fake/stats").json()
            metrics = api.get("/metrics").text
        with connect(database_url) as conn:
            integrity = conn.execute("SELECT sent_shares_without_response_tasks FROM integrity").fetchone()
        assert integrity == (0,)
        assert "followthrough_duplicate_posts_total 0.0" in metrics
        return shares, stats, system


def check_exactly_once(shares: list[dict[str, Any]], stats: dict[str, Any]) -> None:
    # Exactly one post per share, counted by the server
    texts = [s["text"] for s in shares]
    assert {t: stats["by_text"].get(t, 0) for t in texts if stats["by_text"].get(t, 0) != 1} == {}
    # And each sent share's sent_at is its post's creation time on the server (within a second)
    made = {m["id"]: datetime.fromisoformat(m["created_at"].replace("Z", "+00:00")) for m in stats["made"]}
    for s in shares:
        if s["status"] == "sent":
            gap = abs(datetime.fromisoformat(s["sent_at"]) - made[s["external_id"]])
            assert gap <= timedelta(seconds=1), (s["id"], s["sent_at"], made[s["external_id"]])


def test_slow_servers_ignoring_idempotency_keys_get_exactly_one_post_per_share(
    tmp_path: Path, database_url: str, broker_url: str, queue_prefix: str
) -> None:
    shares, stats, _ = run(tmp_path, database_url, broker_url, queue_prefix, visibility="public",
                           mastodon_flags=())
    # Public posts can be looked up: every share ends sent, exactly once
    assert [s["id"] for s in shares if s["status"] != "sent"] == []
    check_exactly_once(shares, stats)


def test_followers_only_posts_the_server_hides_end_held_never_posted_twice(
    tmp_path: Path, database_url: str, rabbitmq_url: str, queue_prefix: str
) -> None:
    try:
        shares, stats, _ = run(tmp_path, database_url, rabbitmq_url, queue_prefix, visibility="private",
                               mastodon_flags=("--hide-non-public",))
    finally:
        delete_rabbit_queues(rabbitmq_url, list(queue_names(queue_prefix).values()))
    # The server hides them from look-ups: a share whose outcome is unknown is held, not posted again
    held = [s for s in shares if s["status"] == "held"]
    assert held, "the 35 s posts time out: their outcome is unknown and cannot be looked up"
    assert all(s["held"]["outcome_unknown"] for s in held)
    check_exactly_once([s for s in shares if s["status"] == "sent"], stats)
    assert all(stats["by_text"].get(s["text"], 0) <= 1 for s in held)


THREADS = 20


def test_threads_on_a_slow_server_ignoring_idempotency_keys_get_each_part_once_in_order(
    tmp_path: Path, database_url: str, broker_url: str, queue_prefix: str
) -> None:
    with fake_mastodon(free_port(), "--latency", "3", "--ignore-idempotency-key") as mastodon, \
            running(tmp_path, database_url=database_url, broker_url=broker_url, queue_prefix=queue_prefix,
                    extra_env=ENV) as system:
        token = system.cli("token", "create", "--workspace", "default", "--scope", "write")
        with system.client(token) as api:
            config = {"base_url": mastodon, "access_token_env": TOKEN_ENV}
            account = api.post("/v1/accounts", json={"name": "team", "channel": "mastodon", "config": config})
            assert account.status_code == 201, account.text
            # Given 20 three-part threads due together, on a server answering every post 3 s late
            due = datetime.now(UTC) + timedelta(seconds=8)
            ids = []
            for i in range(THREADS):
                body = {"account_id": account.json()["id"], "scheduled_at": due.isoformat(),
                        "parts": [{"text": f"thread {i} part {p}"} for p in range(3)],
                        "response_plan": [{"kind": "check_replies", "after": "PT1H", "owner": "alice"}]}
                answer = api.post("/v1/shares", json=body)
                assert answer.status_code == 201, answer.text
                ids.append(answer.json()["id"])
            # When the worker processes are SIGKILLed while parts are in flight, twice
            for posts in (10, 30):
                wait_until(lambda n=posts: httpx.get(f"{mastodon}/_fake/stats").json()["posts"] >= n, timeout=120,
                           what="parts in flight")
                assert kill_worker_processes(system) > 0
            # Then every thread ends sent
            shares = wait_until(lambda: settled(api, ids), timeout=300, interval=1.0, what="every thread sent")
            stats = httpx.get(f"{mastodon}/_fake/stats").json()
            metrics = api.get("/metrics").text
    assert [s["id"] for s in shares if s["status"] != "sent"] == []
    # And the server made each part exactly once, each under the part before
    texts = [f"thread {i} part {p}" for i in range(THREADS) for p in range(3)]
    assert {t: n for t, n in stats["by_text"].items() if n != 1} == {}
    assert sorted(stats["by_text"]) == sorted(texts)
    made = {m["text"]: m for m in stats["made"]}
    for i in range(THREADS):
        chain = [made[f"thread {i} part {p}"] for p in range(3)]
        assert [m["in_reply_to_id"] for m in chain] == [None, chain[0]["id"], chain[1]["id"]]
    for share in shares:
        assert [p["external_id"] for p in share["parts"]] == [made[p["text"]]["id"] for p in share["parts"]]
    assert "followthrough_duplicate_posts_total 0.0" in metrics
    with connect(database_url) as conn:
        assert conn.execute("SELECT sent_shares_without_response_tasks FROM integrity").fetchone() == (0,)


MEDIA_SHARES = 20


def test_shares_with_media_on_a_slow_server_ignoring_idempotency_keys_get_one_status_each_with_its_media(
    tmp_path: Path, database_url: str, broker_url: str, queue_prefix: str
) -> None:
    with fake_mastodon(free_port(), "--latency", "3", "--ignore-idempotency-key",
                       "--media-processing-polls", "2") as mastodon, \
            running(tmp_path, database_url=database_url, broker_url=broker_url, queue_prefix=queue_prefix,
                    extra_env=ENV) as system:
        token = system.cli("token", "create", "--workspace", "default", "--scope", "write")
        with system.client(token) as api:
            config = {"base_url": mastodon, "access_token_env": TOKEN_ENV}
            account = api.post("/v1/accounts", json={"name": "team", "channel": "mastodon", "config": config})
            assert account.status_code == 201, account.text
            # Given 20 shares each with its own image, due together, on a server processing media
            # asynchronously (202, 206, 200) and answering every status 3 s late
            images = [uploaded(api, {}, png(16 + i, 16), alt=f"Square {i}") for i in range(MEDIA_SHARES)]
            due = datetime.now(UTC) + timedelta(seconds=8)
            ids = []
            for i, image in enumerate(images):
                body = {"account_id": account.json()["id"], "scheduled_at": due.isoformat(),
                        "text": f"picture note {i}", "media": [{"id": image["id"]}],
                        "response_plan": [{"kind": "check_replies", "after": "PT1H", "owner": "alice"}]}
                answer = api.post("/v1/shares", json=body)
                assert answer.status_code == 201, answer.text
                ids.append(answer.json()["id"])
            # When the worker processes are SIGKILLed while statuses are in flight
            wait_until(lambda: httpx.get(f"{mastodon}/_fake/stats").json()["posts"] >= 5, timeout=120,
                       what="statuses in flight")
            assert kill_worker_processes(system) > 0
            # Then every share ends sent
            shares = wait_until(lambda: settled(api, ids), timeout=300, interval=1.0, what="every share sent")
            stats = httpx.get(f"{mastodon}/_fake/stats").json()
            metrics = api.get("/metrics").text
    assert [s["id"] for s in shares if s["status"] != "sent"] == []
    # And the server made one status per share (0 duplicates), each with its own image and alt
    check_exactly_once(shares, stats)
    assert sorted(stats["by_text"]) == sorted(f"picture note {i}" for i in range(MEDIA_SHARES))
    for made in stats["made"]:
        i = int(made["text"].rsplit(" ", 1)[-1])
        assert [(m["description"], m["sha256"]) for m in made["media"]] == [(f"Square {i}", images[i]["sha256"])]
    assert "followthrough_duplicate_posts_total 0.0" in metrics
