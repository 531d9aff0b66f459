"""Every line in a terminal reads like the rest: a worker's lines, which its Dramatiq worker
processes write through a pipe to their master, come out through the console renderer when
the worker runs in a terminal (as under `followthrough up`), and stay JSON lines when its
output goes to a pipe (a log pipeline). Run as an operator runs it: a process of its own,
in a pseudo-terminal."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

pytestmark = pytest.mark.e2e

ANSI = re.compile(r"\x1b\[[0-9;]*m")
READY = "worker_process_ready"
BOOT_SECONDS = 120.0  # a bound on waiting, not an assertion: the test fails only if the line never comes


def worker_command(database_url: str, broker_url: str, queue_prefix: str) -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLLOWTHROUGH_")}
    env.update(DATABASE_URL=database_url, BROKER_URL=broker_url, FOLLOWTHROUGH_QUEUE_PREFIX=queue_prefix)
    return [sys.executable, "-m", "followthrough.cli", "worker", "--processes", "1", "--threads", "1"], env


def stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def read_until(fd: int, marker: str) -> str:
    seen = b""
    deadline = time.monotonic() + BOOT_SECONDS
    while marker.encode() not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the terminal's other end closed: the process is gone
                break
            if not chunk:
                break
            seen += chunk
    # the rest of the line the marker is on
    while marker.encode() in seen and not seen.split(marker.encode(), 1)[1].count(b"\n"):
        ready, _, _ = select.select([fd], [], [], 5)
        if not ready:
            break
        seen += os.read(fd, 65536)
    text = seen.decode(errors="replace")
    assert marker in text, f"no {marker} line from the worker:\n{text}"
    return text


def test_a_worker_in_a_terminal_writes_every_line_through_the_console_renderer(
    database_url: str, broker_url: str, queue_prefix: str, tmp_path: Path
) -> None:
    argv, env = worker_command(database_url, broker_url, queue_prefix)
    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, env=env, cwd=tmp_path, stdin=follower, stdout=follower, stderr=follower,
                            start_new_session=True)
    os.close(follower)
    try:
        text = read_until(leader, READY)
    finally:
        stop(proc)
        os.close(leader)
    lines = [ANSI.sub("", line).strip() for line in text.splitlines() if line.strip()]
    [ready] = [line for line in lines if READY in line]
    assert "[info" in ready  # the console renderer's level column
    assert "role=worker" in ready
    assert [line for line in lines if line.startswith("{")] == []  # no JSON line among them
    assert "\x1b[" in text  # coloured, as the rest of a terminal's lines


def test_a_worker_writing_to_a_pipe_keeps_json_lines(
    database_url: str, broker_url: str, queue_prefix: str, tmp_path: Path
) -> None:
    argv, env = worker_command(database_url, broker_url, queue_prefix)
    proc = subprocess.Popen(argv, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    assert proc.stdout is not None
    try:
        text = read_until(proc.stdout.fileno(), READY)
    finally:
        stop(proc)
        proc.stdout.close()
    [ready] = [orjson.loads(line) for line in text.splitlines() if READY in line]
    assert (ready["event"], ready["role"], ready["level"]) == (READY, "worker", "info")
    assert "\x1b[" not in text
