"""Replies and answers exactly once while worker processes are SIGKILLed, through the
real roles (`followthrough up`, real PostgreSQL and Redis) and a fake Mastodon in its own
process that answers posts a second late and ignores `Idempotency-Key`.

Looks are repeated by their cadence (every 2 s) and by the dispatcher handing a killed
look out again; answers killed mid-call are looked for before being posted again.
Afterwards the log holds every reply once, and the server counts every answer once.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support.crashes import kill_worker_processes
from tests.support.database import connect
from tests.support.fake_mastodon import TOKEN
from tests.support.fake_mastodon_process import fake_mastodon
from tests.support.servers import free_port
from tests.support.system import running, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]

SHARES = 12
REPLIES_PER_SHARE = 3
TOKEN_ENV = "FAKE_MASTODON_TOKEN"
ENV = {
    TOKEN_ENV: TOKEN,
    "FOLLOWTHROUGH_WORKER_PROCESSES": "2",
    "FOLLOWTHROUGH_WORKER_THREADS": "4",
    "FOLLOWTHROUGH_WORKER_SHUTDOWN_SECONDS": "5",
    "FOLLOWTHROUGH_RESTART_BACKOFF_MAX_SECONDS": "2",
    "FOLLOWTHROUGH_LEASE_SECONDS": "5",
    "FOLLOWTHROUGH_CHANNEL_TIMEOUT_SECONDS": "5",
    "FOLLOWTHROUGH_RETRY_BASE_SECONDS": "2",
    "FOLLOWTHROUGH_MAX_ATTEMPTS": "10",
}
LOOKS = {"cadence": [{"until": "PT1H", "every": "PT2S"}], "max_backoff": 1}


def all_replies(api: httpx.Client, state: str | None = None) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"limit": 500, **({"state": state} if state else {})}
    items: list[dict[str, Any]] = api.get("/v1/replies", params=params).json()["items"]
    return items


def test_replies_are_recorded_once_and_answers_posted_once_while_workers_are_killed(
    tmp_path: Path, database_url: str, broker_url: str, queue_prefix: str
) -> None:
    with fake_mastodon(free_port(), "--latency", "1", "--ignore-idempotency-key") as mastodon, \
            running(tmp_path, database_url=database_url, broker_url=broker_url, queue_prefix=queue_prefix,
                    extra_env=ENV) as system:
        token = system.cli("token", "create", "--workspace", "default", "--scope", "write")
        with system.client(token) as api:
            config = {"base_url": mastodon, "access_token_env": TOKEN_ENV, "replies": LOOKS}
            account = api.post("/v1/accounts", json={"name": "team", "channel": "mastodon", "config": config})
            assert account.status_code == 201, account.text
            # Given a dozen shares sent on Mastodon
            due = datetime.now(UTC) + timedelta(seconds=3)
            ids = []
            for i in range(SHARES):
                planned = api.post("/v1/shares", json={
                    "account_id": account.json()["id"], "text": f"release note {i}", "scheduled_at": due.isoformat(),
                    "response_plan": [{"kind": "answer_replies", "after": "PT1H", "owner": "alice"}]})
                assert planned.status_code == 201, planned.text
                ids.append(planned.json()["id"])
            shares = wait_until(lambda: _all_sent(api, ids), timeout=120, interval=1.0, what="every share sent")
            # When three replies come under each (one a reply to a reply)
            for i, share in enumerate(shares):
                first = httpx.post(f"{mastodon}/_fake/reply", json={
                    "parent_id": share["external_id"], "text": f"question {i}", "author": "ana@example.social"})
                httpx.post(f"{mastodon}/_fake/reply", json={
                    "parent_id": first.json()["id"], "text": f"me too {i}", "author": "bo@example.social"})
                httpx.post(f"{mastodon}/_fake/reply", json={
                    "parent_id": share["external_id"], "text": f"congrats {i}", "author": "cy@example.social"})
            # And the worker processes are SIGKILLed while looks are under way
            wait_until(lambda: len(all_replies(api)) >= 5, timeout=60, what="the first replies collected")
            assert kill_worker_processes(system) > 0
            # Then every reply reaches the inbox
            expected = SHARES * REPLIES_PER_SHARE
            wait_until(lambda: len(all_replies(api)) == expected, timeout=180, interval=1.0,
                       what="every reply collected")
            # When the first reply of each share is answered on a server now answering posts 4 s late,
            # and the workers are killed while those calls wait for their answers
            httpx.post(f"{mastodon}/_fake/knobs", json={"latency": 4})
            questions = [r for r in all_replies(api) if r["text"].startswith("question ")]
            for reply in questions:
                answer = api.post(f"/v1/replies/{reply['id']}/answer", json={"text": f"answer to {reply['text']}"})
                assert answer.status_code == 202, answer.text
            wait_until(lambda: sum(1 for t, n in _by_text(mastodon).items() if t.startswith("answer to")) >= 1,
                       timeout=60, interval=0.05, what="answers in flight")
            assert kill_worker_processes(system) > 0
            httpx.post(f"{mastodon}/_fake/knobs", json={"latency": 1})
            # Then every answer is recorded with its url
            wait_until(lambda: len([r for r in all_replies(api, "answered") if r["answer"]["url"]]) == SHARES,
                       timeout=240, interval=1.0, what="every answer published")
            # And more looks run after the answers (a collection repeated over them)
            answered_by = datetime.now(UTC)
            wait_until(lambda: all(_looked_after(api, i, answered_by) for i in ids), timeout=120, interval=1.0,
                       what="a look after the answers")
            counts = _by_text(mastodon)
            # And the audit recounts every event of the share streams (looks, replies, answers, their
            # attempts and failures) and finds the read models and the reported figures equal
            audited = subprocess.run(
                [sys.executable, "-m", "followthrough.cli", "audit", "--format", "json", "--wait", "120"],
                env=system.env, capture_output=True, text=True, timeout=600, check=False)
            report = orjson.loads(audited.stdout.splitlines()[-1])
            assert (audited.returncode, report["clean"]) == (0, True), audited.stdout[-3000:]
            assert report["workspaces"][0]["replies"] == expected
        with connect(database_url) as conn:
            received = conn.execute(
                "SELECT count(*), count(DISTINCT (stream_id, data->>'reply_id')) FROM events"
                " WHERE type = 'ResponseReceived'").fetchone()
            answered = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE (data->>'native')::boolean),"
                " count(*) FILTER (WHERE (data->>'reconciled')::boolean) FROM events"
                " WHERE type = 'ReplyAnswered'").fetchone()
    # Every reply recorded exactly once (the team's answers never taken for replies)
    assert received == (expected, expected)
    # Every answer recorded once, none taken for one written in Mastodon's own app; those whose
    # call was killed were found (by a look at the thread, or by the next attempt looking first)
    assert answered is not None
    assert answered[:2] == (SHARES, 0)
    assert answered[2] >= 1, "no answer was found after a kill: no call was killed mid-way"
    # And posted exactly once, counted by the server
    answers = {t: n for t, n in counts.items() if t.startswith("answer to")}
    assert len(answers) == SHARES
    assert {t: n for t, n in answers.items() if n != 1} == {}
    assert any(line.get("event") == "replies_collected" for line in system.logs())


def _all_sent(api: httpx.Client, ids: list[str]) -> list[dict[str, Any]] | None:
    shares = [api.get(f"/v1/shares/{i}").json() for i in ids]
    return shares if all(s["status"] == "sent" for s in shares) else None


def _by_text(mastodon: str) -> dict[str, int]:
    counts: dict[str, int] = httpx.get(f"{mastodon}/_fake/stats").json()["by_text"]
    return counts


def _looked_after(api: httpx.Client, share_id: str, moment: datetime) -> bool:
    last = api.get(f"/v1/shares/{share_id}").json()["replies"]["last_look_at"]
    return last is not None and datetime.fromisoformat(last) > moment
