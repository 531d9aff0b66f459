"""Reading a refused body to its end, within bounds (``scheduler.api.middleware.drain``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from scheduler.api.middleware import drain


def sender(pieces: int, size: int, *, pause: float = 0.0) -> tuple[Callable[[], Awaitable[dict[str, Any]]], list[int]]:
    """A receive() that yields ``pieces`` bodies of ``size`` bytes, the last without more_body."""
    read = [0]

    async def receive() -> dict[str, Any]:
        if pause:
            await asyncio.sleep(pause)
        read[0] += 1
        return {"type": "http.request", "body": b"x" * size, "more_body": read[0] < pieces}

    return receive, read


def test_a_body_within_the_cap_is_read_to_its_end() -> None:
    receive, read = sender(10, 1000)
    assert asyncio.run(drain(receive, cap=100_000)) is True
    assert read == [10]


def test_a_body_past_the_cap_is_read_no_further_than_the_cap() -> None:
    receive, read = sender(1000, 1000)
    assert asyncio.run(drain(receive, cap=5000)) is False
    assert read == [6]


def test_a_slow_sender_is_given_up_on_after_the_time_bound() -> None:
    receive, read = sender(1000, 10, pause=0.05)
    assert asyncio.run(drain(receive, cap=10**9, seconds=0.2)) is False
    assert 1 <= read[0] < 10


def test_a_client_gone_away_ends_the_drain() -> None:
    async def gone() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    assert asyncio.run(drain(gone, cap=1000)) is False
