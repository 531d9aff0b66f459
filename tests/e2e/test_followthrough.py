"""End to end: the roles as separate processes (`followthrough up`), real PostgreSQL and
a real broker, driven through the HTTP API as a team would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.database import delete_rabbit_queues
from tests.support.system import running, wait_until
from workers.actors import queue_names

pytestmark = pytest.mark.e2e


def _flow(tmp_path: Path, *, database_url: str, broker_url: str, queue_prefix: str) -> None:
    with running(tmp_path, database_url=database_url, broker_url=broker_url, queue_prefix=queue_prefix) as system:
        token = system.cli("token", "create", "--workspace", "default", "--scope", "write")
        assert token.startswith("ft_")
        with system.client(token) as api:
            # Given a console account
            account = api.post("/v1/accounts", json={"name": "launch", "channel": "console"})
            assert account.status_code == 201, account.text
            # When a share is planned 2 seconds ahead with two response tasks
            due = datetime.now(UTC) + timedelta(seconds=2)
            planned = api.post("/v1/shares", json={
                "account_id": account.json()["id"], "text": "We launched!", "scheduled_at": due.isoformat(),
                "response_plan": [
                    {"kind": "check_replies", "after": "PT1H", "owner": "alice"},
                    {"kind": "check_replies", "after": "PT1S", "owner": "bob"},
                ]})
            assert planned.status_code == 201, planned.text
            share_id = planned.json()["id"]
            assert planned.json()["status"] == "planned"

            # Then it becomes sent at its due time
            def sent() -> dict[str, Any] | None:
                body: dict[str, Any] = api.get(f"/v1/shares/{share_id}").json()
                return body if body["status"] == "sent" else None

            share = wait_until(sent, timeout=30, what="the share to be sent")
            print(f"share {share_id} sent {share['lateness_ms']} ms after its scheduled time")
            assert share["lateness_ms"] >= 0
            assert datetime.fromisoformat(share["sent_at"]) >= due
            assert share["attempts"] == 1
            # And the console holds exactly one line for it
            lines = [line for line in system.console_lines("launch") if line["share_id"] == share_id]
            assert len(lines) == 1
            assert lines[0]["text"] == "We launched!"
            # And its tasks were recorded before it was sent
            types = [e["type"] for e in api.get(f"/v1/shares/{share_id}/events").json()]
            assert types.index("ResponseTasksRecorded") < types.index("ShareSent")
            # When the one-hour task is completed
            hour_task = share["response_tasks"][0]
            done = api.post(f"/v1/response-tasks/{hour_task['id']}/complete", json={"note": "no replies yet"})
            assert done.status_code == 200, done.text
            assert done.json()["status"] == "done"
            # And the one-second task passes its due time
            wait_until(lambda: api.get(f"/v1/shares/{share_id}").json()["response_tasks"][1]["status"] == "overdue",
                       timeout=10, what="the 1-second task to be overdue")

            # Then the follow-through rate for the account is one on time out of two settled
            def rate() -> dict[str, Any] | None:
                rows = api.get("/v1/followthrough", params={"by": "account"}).json()["rows"]
                row = next((r for r in rows if r["key"] == "launch"), None)
                return row if row and row["done_on_time"] == 1 and row["overdue"] == 1 else None

            row = wait_until(rate, timeout=20, what="the follow-through projection")
            assert row["rate"] == 0.5
            assert row["open"] == 0
            assert api.get("/v1/followthrough").json()["sent_shares_without_response_tasks"] == 0
            # And the worker's lines carry the context operators need
            sent_lines = [line for line in system.logs() if line.get("event") == "share_sent"]
            assert sent_lines
            for key in ("message_id", "actor", "share_id", "attempt", "stream_version", "lateness_ms"):
                assert key in sent_lines[0], key
            # and the dispatcher's hand-out names the message the worker's line came from
            dispatched = {line["share_id"]: line["message_id"] for line in system.logs()
                          if line.get("event") == "share_dispatched"}
            assert all(dispatched[line["share_id"]] == line["message_id"] for line in sent_lines)
            assert token not in system.log_path.read_text()


def test_a_planned_share_is_sent_on_time_and_its_followthrough_is_measured_with_redis(
    tmp_path: Path, database_url: str, broker_url: str, queue_prefix: str
) -> None:
    _flow(tmp_path, database_url=database_url, broker_url=broker_url, queue_prefix=queue_prefix)


@pytest.mark.rabbitmq
def test_the_same_flow_works_with_rabbitmq(
    tmp_path: Path, database_url: str, rabbitmq_url: str, queue_prefix: str
) -> None:
    try:
        _flow(tmp_path, database_url=database_url, broker_url=rabbitmq_url, queue_prefix=queue_prefix)
    finally:
        delete_rabbit_queues(rabbitmq_url, list(queue_names(queue_prefix).values()))
