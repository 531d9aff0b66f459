"""End to end: calendars and the business clock through the API of `followthrough up`
(the roles as separate processes, real PostgreSQL and broker): a business step sent now is
due in its owner's next business hours, never moved by a later change, and the audit is clean."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.system import running, wait_until

pytestmark = pytest.mark.e2e

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def test_a_business_step_is_due_in_its_owner_s_next_business_hours_and_stays_there(
    tmp_path: Path, database_url: str, broker_url: str, queue_prefix: str
) -> None:
    with running(tmp_path, database_url=database_url, broker_url=broker_url, queue_prefix=queue_prefix) as system:
        token = system.cli("token", "create", "--workspace", "default", "--scope", "write")
        with system.client(token) as api:
            # Given the workspace works only on the day after tomorrow, 10:00-11:00 UTC, and bob 15:00-16:00
            day = (datetime.now(UTC) + timedelta(days=2)).date()
            weekday = DAYS[day.weekday()]
            for name, hours in (("default", ["10:00", "11:00"]), ("late", ["15:00", "16:00"])):
                put = api.put(f"/v1/calendars/{name}", json={"time_zone": "UTC", "week": {weekday: [hours]}})
                assert put.status_code == 201, put.text
            assert api.put("/v1/owners/bob", json={"calendar": "late"}).status_code == 200
            account = api.post("/v1/accounts", json={"name": "launch", "channel": "console"}).json()
            # When a share with a business step for each, and a wall step, is sent now
            planned = api.post("/v1/shares", json={"account_id": account["id"], "text": "Hours!", "response_plan": [
                {"kind": "answer_replies", "after": "PT30M", "owner": "alice", "clock": "business"},
                {"kind": "answer_replies", "after": "PT30M", "owner": "bob", "clock": "business"},
                {"kind": "check_replies", "after": "PT30M", "owner": "carol"}]})
            assert planned.status_code == 201, planned.text
            share_id = planned.json()["id"]

            def sent() -> dict[str, Any] | None:
                body: dict[str, Any] = api.get(f"/v1/shares/{share_id}").json()
                return body if body["status"] == "sent" else None

            share = wait_until(sent, timeout=30, what="the share to be sent")
            # Then alice's step is due half an hour into the workspace's hours, bob's into his own,
            # carol's half an hour after the post
            due = [datetime.fromisoformat(t["due_at"]) for t in share["response_tasks"]]
            assert due[0] == datetime.combine(day, time(10, 30), tzinfo=UTC)
            assert due[1] == datetime.combine(day, time(15, 30), tzinfo=UTC)
            assert due[2] == datetime.fromisoformat(share["sent_at"]) + timedelta(minutes=30)
            assert [t["sla"] for t in share["response_tasks"]] == ["on_track"] * 3
            # When the workspace's hours change afterwards
            api.put("/v1/calendars/default", json={"time_zone": "UTC", "week": {d: [["00:00", "24:00"]] for d in DAYS}})
            # Then the share's tasks keep their due times, in the API and in the inbox
            again = api.get(f"/v1/shares/{share_id}").json()["response_tasks"]
            assert [t["due_at"] for t in again] == [t["due_at"] for t in share["response_tasks"]]

            def inbox() -> list[dict[str, Any]] | None:
                tasks: list[dict[str, Any]] = api.get("/v1/response-tasks").json()["tasks"]
                return tasks if len(tasks) == 3 else None

            listed = {t["id"]: datetime.fromisoformat(t["due_at"]) for t in wait_until(inbox, timeout=20,
                                                                                      what="the inbox")}
            assert [listed[t["id"]] for t in again] == due
        # And the audit recounts the same due times from the log
        system.cli("audit")
