"""A clean stop, every time: `followthrough up` on its embedded PostgreSQL and Redis owns
their lifetime. Another CLI process of the same home that died without cleaning up (its
terminal closed: SIGHUP; or SIGKILLed) leaves its pid in pgserver's handle file; Ctrl-C on
`up` still leaves no process of that home running, PostgreSQL included. Real processes,
real embedded servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.servers import free_port
from tests.support.system import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def processes_of(home: Path) -> list[psutil.Process]:
    """Every process whose command line names the home (postgres -D <home>/postgres, redis --dir ...)."""
    found = []
    mark = str(home.resolve())
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            cmdline = proc.info["cmdline"] or []
            if proc.info["status"] != psutil.STATUS_ZOMBIE and any(mark in part for part in cmdline):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def answers(base_url: str, up: subprocess.Popen[bytes], log: Path) -> bool:
    if up.poll() is not None:
        raise AssertionError(f"followthrough up exited: {log.read_text()[-3000:]}")
    try:
        return httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("kill_with", [signal.SIGHUP, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_ctrl_c_on_up_leaves_no_server_of_its_home_after_a_cli_process_died(
    tmp_path: Path, kill_with: signal.Signals
) -> None:
    # Given `up` on embedded servers (no DATABASE_URL, no BROKER_URL) in a short home
    home = Path(f"/tmp/ft-stop-{os.getpid()}-{kill_with.name.lower()}")  # short: the sockets' paths
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "BROKER_URL", "RABBITMQ_URL"}}
    env |= {"FOLLOWTHROUGH_HOME": str(home), "FOLLOWTHROUGH_LOG_FORMAT": "json",
            "FOLLOWTHROUGH_WORKER_PROCESSES": "1", "FOLLOWTHROUGH_WORKER_THREADS": "1",
            "FOLLOWTHROUGH_WORKER_SHUTDOWN_SECONDS": "3"}
    port = free_port()
    log = tmp_path / "up.log"
    try:
        with log.open("wb") as out:
            up = subprocess.Popen([sys.executable, "-m", "followthrough.cli", "up", "--port", str(port)],
                                  env=env, stdout=out, stderr=subprocess.STDOUT)
        wait_until(lambda: answers(f"http://127.0.0.1:{port}", up, log), timeout=120, interval=0.25,
                   what="the API to be ready")
        assert any("postgres" in " ".join(p.info["cmdline"] or []) for p in processes_of(home))

        # And a CLI command of the same home that dies while it follows the log
        tail = subprocess.Popen([sys.executable, "-m", "followthrough.cli", "log", "tail"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        handles = home / "postgres" / ".handle_pids.json"
        wait_until(lambda: tail.pid in json.loads(handles.read_text()), timeout=60,
                   what="the tail to hold a handle on the embedded PostgreSQL")
        tail.send_signal(kill_with)
        tail.wait(timeout=30)

        # When `up` gets Ctrl-C
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=90) == 0, log.read_text()[-3000:]

        # Then no process of that home is left, PostgreSQL and Redis included
        wait_until(lambda: not processes_of(home), timeout=30,
                   what=f"every process of the home to stop: {[p.info['cmdline'] for p in processes_of(home)]}")
        events = [json.loads(line).get("event") for line in log.read_text().splitlines() if line.startswith("{")]
        assert "embedded_postgres_stopped" in events
        assert "embedded_postgres_released" not in events
        if kill_with == signal.SIGKILL:  # no exit handler ran: its pid was left in the handle file
            assert "embedded_postgres_handles_pruned" in events
    finally:
        for proc in processes_of(home):
            proc.kill()
        subprocess.run(["rm", "-rf", str(home)], check=False)
