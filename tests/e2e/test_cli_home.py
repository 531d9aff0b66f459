"""The CLI never invents a home: an operator's command run in a folder with no Followthrough
home (and no DATABASE_URL) refuses with the fix instead of starting an empty embedded
PostgreSQL there; no traceback. And `up` prints its banner only once the API answers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.cli import cli
from tests.support.servers import free_port

pytestmark = pytest.mark.e2e

READING = [
    ("report",),
    ("audit",),
    ("token", "list", "--workspace", "default"),
    ("token", "create", "--workspace", "default", "--scope", "read"),
    ("log", "status"),
    ("log", "tail", "--no-follow"),
    ("projections", "status"),
]


@pytest.mark.parametrize("args", READING, ids=" ".join)
def test_a_command_in_a_folder_without_a_home_refuses_with_the_fix_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    # Given a folder with no Followthrough home, and neither DATABASE_URL nor FOLLOWTHROUGH_HOME
    monkeypatch.chdir(tmp_path)
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "BROKER_URL", "FOLLOWTHROUGH_HOME", "FOLLOWTHROUGH_DATABASE_URL"}}
    # When an operator's command runs there
    done = cli(*args, env=env)
    # Then it refuses, saying how to point at a home, and made none
    assert done.returncode == 2
    assert "no Followthrough home in ./.followthrough: pass --home or set FOLLOWTHROUGH_HOME" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / ".followthrough").exists()
    # And with --home naming a folder that is no home either, it names that one
    elsewhere = cli(*args, "--home", str(tmp_path / "nowhere"), env=env)
    assert elsewhere.returncode == 2
    assert f"no Followthrough home in {tmp_path / 'nowhere'}" in elsewhere.stderr
    assert not (tmp_path / "nowhere").exists()


def test_the_banner_is_printed_only_once_the_api_answers_readyz(
    tmp_path: Path, database_url: str, broker_url: str, queue_prefix: str
) -> None:
    # Given `up` starting
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "BROKER_URL": broker_url,
           "FOLLOWTHROUGH_QUEUE_PREFIX": queue_prefix, "FOLLOWTHROUGH_LOG_FORMAT": "json",
           "FOLLOWTHROUGH_HOME": str(tmp_path / "home"), "FOLLOWTHROUGH_WORKER_PROCESSES": "1"}
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen([sys.executable, "-m", "followthrough.cli", "up", "--port", str(port)], env=env,
                              stdout=out, stderr=subprocess.STDOUT)
    try:
        # When its banner appears
        deadline = time.monotonic() + 120
        while b"Followthrough is running." not in log.read_bytes():
            assert up.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "no banner"
            time.sleep(0.02)
        # Then the API answers at once
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
    finally:
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=90) == 0, log.read_text()[-3000:]
