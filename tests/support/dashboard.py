"""The dashboard as its integration tests use it: a client signed in with a token, the
CSRF field of a page, and the number of events (a refused form writes none)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import psycopg


@contextmanager
def signed_in(base_url: str, token: str, *, next_page: str = "/dashboard") -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=20, follow_redirects=False) as client:
        answer = client.post("/dashboard/signin", data={"token": token, "next": next_page})
        assert answer.status_code == 303, answer.text
        yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def event_count(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM events").fetchone()
    assert row is not None
    return int(row[0])
