"""End to end through `followthrough up` on the console channel: an account that requires
approval; a share due in 5 s is not published while in review, turns review_overdue (a
signed ``share.review_overdue`` webhook, once), and is published exactly once after another
person approves it; self-approval is 403; a change after approval sends it back to review;
`followthrough audit` flags a share published by hand past the database's approval guard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import orjson
import pytest

from tests.support.approval import APPROVAL, publish_by_hand
from tests.support.system import audit, running, wait_until
from tests.support.webhook_receiver import receiving

pytestmark = pytest.mark.e2e

PLAN = [{"kind": "check_replies", "after": "PT1H", "owner": "ana"}]


def in_seconds(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def test_a_share_in_review_is_published_once_only_after_another_person_approves_it(
    tmp_path: Path, database_url: str, broker_url: str, queue_prefix: str
) -> None:
    with receiving() as receiver, running(tmp_path, database_url=database_url, broker_url=broker_url,
                                          queue_prefix=queue_prefix) as system:
        tokens = {name: system.cli("token", "create", "--workspace", "default", "--scope", "write", "--owner", name)
                  for name in ("ana", "ben")}
        with system.client(tokens["ana"]) as ana, system.client(tokens["ben"]) as ben:
            registered = ana.post("/v1/webhooks", json={"url": receiver.url, "events": ["share.review_overdue"]})
            assert registered.status_code == 201, registered.text
            receiver.secret = registered.json()["secret"]
            # Given an account that requires approval, and ana's share on it due in 5 s
            account = ana.post("/v1/accounts", json={"name": "launch", "channel": "console",
                                                     "config": {"approval": APPROVAL}})
            assert account.status_code == 201, account.text
            planned = ana.post("/v1/shares", json={"account_id": account.json()["id"], "text": "We launched!",
                                                   "scheduled_at": in_seconds(5), "response_plan": PLAN})
            assert planned.status_code == 201, planned.text
            share_id = planned.json()["id"]
            assert planned.json()["status"] == "in_review"
            # When ana approves her own share: 403, four eyes
            own = ana.post(f"/v1/shares/{share_id}/approve")
            assert own.status_code == 403, own.text
            assert own.headers["content-type"].startswith("application/problem+json")
            assert "four eyes" in own.json()["detail"]
            # Then at its time it is not published: it turns review_overdue, and the receiver
            # is told once, signed (the receiver verifies each delivery with its library)
            wait_until(lambda: ana.get(f"/v1/shares/{share_id}").json()["status"] == "review_overdue", timeout=60,
                       what="the share to turn review_overdue")
            wait_until(lambda: receiver.types() == ["share.review_overdue"], timeout=60,
                       what="share.review_overdue at the receiver")
            [told] = receiver.accepted()
            assert told.payload is not None
            assert told.payload["data"]["share_id"] == share_id
            assert system.console_lines("launch") == []
            listed = ana.get("/v1/shares", params={"status": "review_overdue"}).json()["shares"]
            assert [s["id"] for s in listed] == [share_id]
            # When ben approves it
            approved = ben.post(f"/v1/shares/{share_id}/approve")
            assert approved.status_code == 200, approved.text
            # Then it is published, late, exactly once
            wait_until(lambda: ana.get(f"/v1/shares/{share_id}").json()["status"] == "sent", timeout=60,
                       what="the approved share to be sent")
            sent = ana.get(f"/v1/shares/{share_id}").json()
            assert sent["lateness_ms"] > 0
            assert [line["share_id"] for line in system.console_lines("launch")] == [share_id]
            events = [(e["type"], e["actor"]) for e in ana.get(f"/v1/shares/{share_id}/events").json()]
            assert events[:3] == [("SharePlanned", "ana"), ("ShareReviewOverdue", events[1][1]),
                                  ("ShareApproved", "ben")]
            assert [t for t, _ in events].count("ShareSent") == 1
            # And a change after approval sends a share back to review
            later = ana.post("/v1/shares", json={"account_id": account.json()["id"], "text": "Next week",
                                                 "scheduled_at": in_seconds(3600), "response_plan": PLAN}).json()
            assert ben.post(f"/v1/shares/{later['id']}/approve").json()["status"] == "planned"
            moved = ana.post(f"/v1/shares/{later['id']}/reschedule", json={"scheduled_at": in_seconds(7200)})
            assert moved.status_code == 200, moved.text
            assert moved.json()["status"] == "in_review"
            assert moved.json()["approval"]["state"] == "pending"
            # And the overdue share was told of once, whatever happened since
            assert receiver.types() == ["share.review_overdue"]


def test_the_audit_flags_a_share_published_without_approval_past_the_guard(
    tmp_path: Path, database_url: str, broker_url: str, queue_prefix: str
) -> None:
    with running(tmp_path, database_url=database_url, broker_url=broker_url, queue_prefix=queue_prefix) as system:
        token = system.cli("token", "create", "--workspace", "default", "--scope", "write", "--owner", "ana")
        with system.client(token) as ana:
            # Given ana's share in review, for tomorrow, and a clean audit
            account = ana.post("/v1/accounts", json={"name": "launch", "channel": "console",
                                                     "config": {"approval": APPROVAL}}).json()
            share_id = ana.post("/v1/shares", json={"account_id": account["id"], "text": "Not approved",
                                                    "scheduled_at": in_seconds(86_400),
                                                    "response_plan": PLAN}).json()["id"]
            clean = audit(system)
            assert clean.returncode == 0, clean.stdout + clean.stderr
            # When someone publishes it by hand, turning the guards off in their own transaction
            publish_by_hand(database_url, UUID(share_id))
            # Then the audit exits 1, flagging that share as published without approval
            flagged = audit(system)
            assert flagged.returncode == 1, flagged.stdout + flagged.stderr
            [workspace] = orjson.loads(flagged.stdout.splitlines()[-1])["workspaces"]
            assert [(v["share_id"], v["rule"]) for v in workspace["violations"]] == [
                (share_id, "ShareSent without an approval before it (its account required one)")]
