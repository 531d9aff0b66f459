"""A quiet system raises no lag alarm: once the work is done, every projection's lag stays
0 for longer than the alert's window (``FollowthroughProjectionLagging``: over 60 s for 5
minutes), and `/metrics` and `projections status` list the same projections with the same
lag. The window is a parameter: FOLLOWTHROUGH_TEST_IDLE_SECONDS (20 s here; 330 runs the
alert's own window)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.system import running, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

IDLE_SECONDS = float(os.environ.get("FOLLOWTHROUGH_TEST_IDLE_SECONDS", "20"))


def metric_lags(base_url: str) -> dict[str, float]:
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    return {sample.labels["projection"]: sample.value
            for family in text_string_to_metric_families(text) if family.name == "followthrough_projection_lag_seconds"
            for sample in family.samples}


def test_an_idle_system_has_no_lag_on_any_projection_for_longer_than_the_alert_window(
    tmp_path: Path, database_url: str, broker_url: str, queue_prefix: str
) -> None:
    with running(tmp_path, database_url=database_url, broker_url=broker_url, queue_prefix=queue_prefix) as system:
        token = system.cli("token", "create", "--workspace", "default", "--scope", "write")
        with system.client(token) as api:
            # Given a share sent (events the webhooks projection does not use: no endpoint wants them)
            account = api.post("/v1/accounts", json={"name": "quiet", "channel": "console"}).json()
            planned = api.post("/v1/shares", json={
                "account_id": account["id"], "text": "then nothing", "scheduled_at":
                    (datetime.now(UTC) + timedelta(seconds=1)).isoformat(),
                "response_plan": [{"kind": "check_replies", "after": "PT6H", "owner": "ana"}]}).json()
            wait_until(lambda: api.get(f"/v1/shares/{planned['id']}").json()["status"] == "sent", timeout=30,
                       what="the share to be sent")
        # And every projection caught up
        wait_until(lambda: (lags := metric_lags(system.base_url)) and not any(lags.values()), timeout=30,
                   what="every projection to catch up")

        # When nothing happens for longer than the alert's window
        samples: list[dict[str, float]] = []
        deadline = time.monotonic() + IDLE_SECONDS
        while time.monotonic() < deadline:
            samples.append(metric_lags(system.base_url))
            time.sleep(1)

        # Then every projection, the webhooks one included, stayed at lag 0 all along
        assert {name for sample in samples for name in sample} == {"shares", "webhooks"}
        assert all(lag == 0.0 for sample in samples for lag in sample.values()), samples
        # And `projections status` lists the same projections, caught up
        status = orjson.loads(system.cli("projections", "status", "--format", "json"))["projections"]
        assert {p["name"]: (p["lag_seconds"], p["events_behind"]) for p in status} == {
            "shares": (0.0, 0), "webhooks": (0.0, 0)}
