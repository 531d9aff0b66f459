"""The `api` role as an operator starts it: metrics on their own port, no server banner."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.servers import free_ports


def test_the_api_role_serves_metrics_on_their_own_port_and_sends_no_server_banner(
    database_url: str, broker_url: str, queue_prefix: str, tmp_path: Path
) -> None:
    # Given `followthrough api` started with a metrics port
    port, metrics_port = free_ports(2)
    env = {**os.environ, "DATABASE_URL": database_url, "BROKER_URL": broker_url, "FOLLOWTHROUGH_HOME": str(tmp_path),
           "FOLLOWTHROUGH_QUEUE_PREFIX": queue_prefix, "FOLLOWTHROUGH_LOG_FORMAT": "json",
           "FOLLOWTHROUGH_METRICS_PORT": str(metrics_port)}
    with (tmp_path / "api.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "followthrough.cli", "api", "--port", str(port)], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                ready = httpx.get(f"{base}/readyz", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, (tmp_path / "api.log").read_text()
                assert time.monotonic() < deadline, "the API did not start"
                time.sleep(0.2)
        # When a request is answered and the metrics port is scraped
        assert ready.status_code == 200
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
        # Then the metrics port serves the request counters, and answers carry no banner
        assert scraped.status_code == 200
        assert 'followthrough_http_requests_total{method="GET",route="/readyz",status="200"}' in scraped.text
        assert "server" not in ready.headers
        assert ready.headers["x-request-id"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
