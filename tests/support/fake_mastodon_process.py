"""The fake Mastodon in its own process (as fault tests run it), on a loopback port."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests.support.system import wait_until


@contextmanager
def fake_mastodon(port: int, *flags: str) -> Iterator[str]:
    process = subprocess.Popen([sys.executable, "-m", "tests.support.fake_mastodon", "--port", str(port), *flags],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(url), timeout=30, what="the fake Mastodon to start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/_fake/stats", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
