"""End to end: `followthrough up` tells a registered receiver what happened to a share,
signed per the Standard Webhooks specification, from its projector role."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.system import running, wait_until
from tests.support.webhook_receiver import receiving

pytestmark = pytest.mark.e2e


def test_a_receiver_registered_through_the_api_is_told_of_a_sent_share_and_its_overdue_task(
    tmp_path: Path, database_url: str, broker_url: str, queue_prefix: str
) -> None:
    extra = {"FOLLOWTHROUGH_WEBHOOK_OVERDUE_SWEEP_SECONDS": "0.5"}
    with receiving() as receiver, running(tmp_path, database_url=database_url, broker_url=broker_url,
                                          queue_prefix=queue_prefix, extra_env=extra) as system:
        token = system.cli("token", "create", "--workspace", "default", "--scope", "write")
        with system.client(token) as api:
            # Given a receiver registered for sent shares and overdue tasks
            registered = api.post("/v1/webhooks", json={"url": receiver.url,
                                                        "events": ["share.sent", "task.overdue"]})
            assert registered.status_code == 201, registered.text
            receiver.secret = registered.json()["secret"]
            # When a console share is planned now with a task due a second after it is sent
            account = api.post("/v1/accounts", json={"name": "launch", "channel": "console"}).json()
            planned = api.post("/v1/shares", json={
                "account_id": account["id"], "text": "We launched!",
                "response_plan": [{"kind": "check_replies", "after": "PT1S", "owner": "bob"}]})
            assert planned.status_code == 201, planned.text
            share_id = planned.json()["id"]
            # Then the receiver gets both events, each verified with the receiver's library
            wait_until(lambda: sorted(receiver.types()) == ["share.sent", "task.overdue"], timeout=60,
                       what="share.sent and task.overdue at the receiver")
            assert {r.payload["data"]["share_id"] for r in receiver.accepted() if r.payload} == {share_id}
            assert all(r.payload is not None for r in receiver.requests)
            # And the API and the logs show the deliveries (recorded once the answers are in),
            # never the secret
            def recorded() -> bool:
                [endpoint] = api.get("/v1/webhooks").json()["webhooks"]
                logged = {line["event_type"] for line in system.logs() if line.get("event") == "webhook_delivered"}
                last = endpoint["last_delivery"]
                return bool(last and last["status"] == "delivered" and logged == {"share.sent", "task.overdue"})

            wait_until(recorded, timeout=20, what="the deliveries recorded and logged")
            assert receiver.secret.removeprefix("whsec_") not in system.log_path.read_text()
