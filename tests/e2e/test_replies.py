"""End to end: the follow-through on the console channel through `followthrough up`.
Replies written with `followthrough console reply` are collected, answered and dismissed
through the API, and the `answer_replies` task settles from what happened."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.database import connect
from tests.support.system import audit, running, wait_until

pytestmark = pytest.mark.e2e

FAST_LOOKS = {"replies": {"cadence": [{"until": "PT1H", "every": "PT2S"}], "max_backoff": 1}}


def test_replies_written_on_the_console_are_collected_answered_and_settle_the_answer_task_on_time(
    tmp_path: Path, database_url: str, broker_url: str, queue_prefix: str
) -> None:
    with running(tmp_path, database_url=database_url, broker_url=broker_url, queue_prefix=queue_prefix) as system:
        token = system.cli("token", "create", "--workspace", "default", "--scope", "write")
        with system.client(token) as api:
            # Given a console account looking for replies every 2 seconds, and a share planned now
            # with an answer_replies step after 60 s and a check_replies step after 1 h (the issue
            # says 10 s; on a loaded 2-core machine each `followthrough console reply` takes 3-5 s
            # to start (18 s seen under load), and 10 s left the answer late; 30 s did too, once, on a
            # slower machine (answered 0.4 s after the due time): time to answer, not to start Python)
            account = api.post("/v1/accounts", json={"name": "launch", "channel": "console", "config": FAST_LOOKS})
            assert account.status_code == 201, account.text
            planned = api.post("/v1/shares", json={
                "account_id": account.json()["id"], "text": "We launched!",
                "response_plan": [{"kind": "answer_replies", "after": "PT60S", "owner": "alice"},
                                  {"kind": "check_replies", "after": "PT1H", "owner": "bob"}]})
            assert planned.status_code == 201, planned.text
            share_id = planned.json()["id"]

            def sent() -> dict[str, Any] | None:
                body: dict[str, Any] = api.get(f"/v1/shares/{share_id}").json()
                return body if body["status"] == "sent" else None

            share = wait_until(sent, timeout=30, what="the share to be sent")
            # When two people reply on the console (at once: each command starts a Python)
            with ThreadPoolExecutor(2) as both_at_once:
                list(both_at_once.map(lambda args: system.cli("console", "reply", share_id, *args),
                                      [("Does it run on Linux?", "--author", "ana"), ("first!", "--author", "bo")]))

            # Then both are in the inbox within one look
            def both() -> list[dict[str, Any]] | None:
                items: list[dict[str, Any]] = api.get("/v1/replies", params={"state": "unanswered"}).json()["items"]
                return items if len(items) == 2 else None

            items = {r["author"]: r for r in wait_until(both, timeout=6, what="both replies in the inbox")}
            assert items["ana"]["owner"] == "alice"
            # When one is answered through the API and the other dismissed
            answer = api.post(f"/v1/replies/{items['ana']['id']}/answer", json={"text": "Yes: x86-64 and arm64."})
            assert answer.status_code == 202, answer.text
            dismiss = api.post(f"/v1/replies/{items['bo']['id']}/dismiss", json={"reason": "no question"})
            assert dismiss.status_code == 200, dismiss.text
            dismissed_at = datetime.fromisoformat(dismiss.json()["dismissed_at"])

            # Then the answer is posted once on the console, and its url comes back on the reply
            def answered() -> dict[str, Any] | None:
                done = api.get("/v1/replies", params={"state": "answered"}).json()["items"]
                return done[0] if done and done[0]["answer"]["url"] else None

            reply = wait_until(answered, timeout=10, what="the answer to be published")
            replies_file = system.home / "console" / "default" / "launch.replies.jsonl"  # next to its posts
            lines = [orjson.loads(x) for x in replies_file.read_bytes().splitlines()]
            assert not (system.home / "console" / "launch.replies.jsonl").exists()
            assert [x["text"] for x in lines if x["by_account"]] == ["Yes: x86-64 and arm64."]
            assert reply["answer"]["url"].endswith(lines[-1]["reply_id"]) or any(
                reply["answer"]["url"].endswith(x["reply_id"]) for x in lines if x["by_account"])
            # And at its due time the answer_replies task is done on time (the other stays open)
            task_id = share["response_tasks"][0]["id"]
            due = datetime.fromisoformat(share["response_tasks"][0]["due_at"])

            def settled() -> dict[str, Any] | None:
                tasks = api.get(f"/v1/shares/{share_id}").json()["response_tasks"]
                task: dict[str, Any] = next(t for t in tasks if t["id"] == task_id)
                return task if task["status"] == "done" else None

            until_due = max(0.0, (due - datetime.now(UTC)).total_seconds())
            task = wait_until(settled, timeout=until_due + 20, what="the answer_replies task to settle")
            # completed when the last of its replies was handled (the answer's publish time or the
            # dismissal, whichever came later), before its due time: done on time, not at the due time
            answered_at = datetime.fromisoformat(reply["answered_at"])
            assert datetime.fromisoformat(task["completed_at"]) == max(answered_at, dismissed_at)
            assert datetime.fromisoformat(task["completed_at"]) < due
            shown = api.get(f"/v1/shares/{share_id}").json()
            assert [t["status"] for t in shown["response_tasks"]][1] == "open"
            assert shown["replies"]["received"] == 2
            assert shown["replies"]["last_look_at"] is not None

            # And the follow-through row shows 2 received, 1 answered, and the time to answer
            def row() -> dict[str, Any] | None:
                rows = api.get("/v1/followthrough", params={"by": "account"}).json()["rows"]
                found = next((r for r in rows if r["key"] == "launch"), None)
                return found if found and found["done_on_time"] == 1 else None

            figures = wait_until(row, timeout=10, what="the follow-through row")
            assert (figures["replies_received"], figures["replies_answered"]) == (2, 1)
            assert figures["median_seconds_to_answer"] > 0
            assert figures["rate"] == 1.0
            # And operators saw one line per look and one per answer
            events = [line.get("event") for line in system.logs()]
            assert "replies_collected" in events
            assert events.count("reply_answered") == 1
            assert "answer_failed" not in events

            # And the audit recounts every event (looks, replies, answers, the dismissal) and finds
            # the read models and the reported figures equal: exit 0, and GET /v1/audit is clean
            audited = audit(system)
            assert audited.returncode == 0, audited.stdout + audited.stderr
            body = orjson.loads(audited.stdout.splitlines()[-1])
            [workspace] = body["workspaces"]
            assert (workspace["clean"], workspace["shares"], workspace["replies"]) == (True, 1, 2)
            over_api = api.get("/v1/audit")
            assert over_api.status_code == 200, over_api.text
            assert over_api.json()["clean"] is True, over_api.text

        # When one read-model row is altered by hand (the dismissed reply shown unanswered)
        with connect(database_url) as conn:
            conn.execute("UPDATE rm_replies SET state = 'unanswered', dismissed_at = NULL"
                         " WHERE share_id = %s AND author = 'bo'", (share_id,))
        # Then the audit exits non-zero, naming the share
        altered = audit(system)
        assert altered.returncode == 1, altered.stdout + altered.stderr
        [workspace] = orjson.loads(altered.stdout.splitlines()[-1])["workspaces"]
        assert {(d["relation"], d["field"], d["log"], d["read_model"]) for d in workspace["differences"]
                if d["key"].startswith(share_id)} >= {("rm_replies", "state", "dismissed", "unanswered")}
