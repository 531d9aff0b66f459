"""JSON log lines are rendered by orjson, and nothing a caller passes breaks a line: what orjson
cannot encode is written as its text, what it refuses goes through the standard library."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import UUID

import pytest
import structlog

from followthrough.logs import configure_logging
from tests.support.cli import logging_restored


@pytest.fixture(autouse=True)
def _tests_logging_back() -> Iterator[None]:
    """These tests configure logging; the next test logs as the suite does."""
    with logging_restored():
        yield

SHARE = UUID("8b0f8c0e-1d5c-4f55-9a9b-0c2f0c0e1d5c")


def _line(**fields: object) -> dict[str, object]:
    out = io.StringIO()
    configure_logging(role="worker", fmt="json", stream=out)
    structlog.get_logger("t").info("share_sent", **fields)
    [line] = out.getvalue().splitlines()
    parsed: dict[str, object] = json.loads(line)
    return parsed


def test_uuids_and_times_are_written_as_their_standard_text() -> None:
    at = datetime(2026, 12, 6, 16, 0, 1, 500, tzinfo=UTC)
    line = _line(share_id=SHARE, due_at=at)
    assert line["share_id"] == str(SHARE)
    assert line["due_at"] == "2026-12-06T16:00:01.000500+00:00"
    assert (line["event"], line["role"], line["level"]) == ("share_sent", "worker", "info")


def test_values_orjson_cannot_encode_still_make_a_line() -> None:
    class Odd:
        def __str__(self) -> str:
            return "odd thing"

    line = _line(thing=Odd(), counts={1: "one"}, huge=2**70)
    assert line["thing"] == "odd thing"
    assert line["counts"] == {"1": "one"}
    assert line["huge"] == 2**70
