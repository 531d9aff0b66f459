"""Running Followthrough as a user does: `followthrough up` in a subprocess, driven over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil

from tests.support.servers import free_port


@dataclass
class System:
    base_url: str
    home: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "followthrough.cli", *args], env=self.env, capture_output=True, check=True,
            timeout=60,
        )
        return result.stdout.decode().strip()

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    def console_lines(self, account: str, workspace: str = "default") -> list[dict[str, Any]]:
        path = self.home / "console" / workspace / f"{account}.jsonl"
        if not path.exists():
            return []
        return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]

    def logs(self) -> list[dict[str, Any]]:
        lines = []
        for raw in self.log_path.read_bytes().splitlines():
            try:
                lines.append(orjson.loads(raw))
            except orjson.JSONDecodeError:
                continue
        return lines


@contextmanager
def client_per_thread(system: System, token: str, *, timeout: float = 10.0) -> Iterator[Callable[[], httpx.Client]]:
    """The calling thread's own client (each closed afterwards), for tests that call the API
    from many threads at once. One httpx client shared by threads can close a connection
    under a request (encode/httpcore#1110; no release fixes it yet): the request fails in the
    test's own process ('Bad file descriptor'), which is not the system's doing."""
    own = threading.local()
    made: list[httpx.Client] = []

    def client() -> httpx.Client:
        mine: httpx.Client | None = getattr(own, "client", None)
        if mine is None:
            mine = own.client = system.client(token)
            mine.timeout = httpx.Timeout(timeout)
            made.append(mine)
        return mine

    try:
        yield client
    finally:
        for each in made:
            each.close()


def audit(system: System) -> subprocess.CompletedProcess[str]:
    """`followthrough audit --format json` against the running system (exit 1: not clean)."""
    return subprocess.run([sys.executable, "-m", "followthrough.cli", "audit", "--format", "json", "--wait", "60"],
                          env=system.env, capture_output=True, text=True, timeout=300, check=False)


def wait_until(predicate: Any, *, timeout: float, interval: float = 0.1, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@contextmanager
def running(
    tmp_path: Path, *, database_url: str, broker_url: str, queue_prefix: str, extra_env: dict[str, str] | None = None
) -> Iterator[System]:
    port = free_port()
    home = tmp_path / "home"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "BROKER_URL": broker_url,
        "FOLLOWTHROUGH_QUEUE_PREFIX": queue_prefix,
        "FOLLOWTHROUGH_LOG_FORMAT": "json",
        "FOLLOWTHROUGH_HOME": str(home),
        # The API's rate limits are tested on their own; here clients plan in bursts.
        "FOLLOWTHROUGH_RATE_LIMIT_PER_TOKEN": "100000/second",
        "FOLLOWTHROUGH_RATE_LIMIT_PER_ADDRESS": "100000/second",
        **(extra_env or {}),
    }
    log_path = tmp_path / "up.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "followthrough.cli", "up", "--port", str(port), "--home", str(home)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    system = System(f"http://127.0.0.1:{port}", home, env, process, log_path)
    try:
        answers: list[str] = []
        try:
            wait_until(lambda: _ready(system, answers), timeout=90, interval=0.25, what="the API to be ready")
        except AssertionError as exc:
            # What the system was doing: the last /readyz answer and the end of its log.
            last = answers[-1] if answers else "(none)"
            raise AssertionError(f"{exc}; last /readyz answer: {last}; "
                                 f"end of up.log:\n{system.log_path.read_text()[-3000:]}") from None
        yield system
    finally:
        stop(system)


def _ready(system: System, answers: list[str]) -> bool:
    if system.process.poll() is not None:
        raise AssertionError(f"followthrough up exited: {system.log_path.read_text()[-3000:]}")
    try:
        response = httpx.get(f"{system.base_url}/readyz", timeout=1)
    except httpx.HTTPError as exc:
        answers[-1:] = [f"{type(exc).__name__}: {exc}"]
        return False
    answers[-1:] = [f"{response.status_code} {response.text[:500]}"]
    return response.status_code == 200


def role_pids(system: System) -> list[int]:
    return [line["pid"] for line in system.logs() if line.get("event") == "role_started"]


def stop(system: System) -> None:
    """Ctrl-C, as a user stops it; then check that no process was left behind."""
    if system.process.poll() is None:
        descendants = psutil.Process(system.process.pid).children(recursive=True)
        system.process.send_signal(signal.SIGINT)
        try:
            system.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            system.process.kill()
            raise
        _, alive = psutil.wait_procs(descendants, timeout=10)
        leftover = [p.pid for p in alive]
        for p in alive:
            p.kill()
        assert not leftover, f"processes left behind after Ctrl-C: {leftover}"
        assert system.process.returncode == 0, system.log_path.read_text()[-3000:]
