"""An exception logged in a terminal (the console renderer) shows its traceback without each
frame's local variables: those never went through the redaction, and reading them walked
objects that other threads were changing, which could make the log call itself raise."""

from __future__ import annotations

import io
from collections.abc import ItemsView, Iterator

import pytest
import structlog

from followthrough.logs import configure_logging
from tests.support.cli import logging_restored


@pytest.fixture(autouse=True)
def _tests_logging_back() -> Iterator[None]:
    """These tests configure logging; the next test logs as the suite does."""
    with logging_restored():
        yield

SECRET = "s3cr3t-token-value"


def _fails_holding_a_token() -> None:
    # A local the traceback must not print (the traceback shows this source, not the value).
    access_token = "".join(reversed("eulav-nekot-t3rc3s"))
    raise ValueError(f"refused ({len(access_token)} characters)")


def test_a_console_traceback_names_the_error_but_not_the_frames_locals() -> None:
    out = io.StringIO()
    configure_logging(role="worker", fmt="console", stream=out)
    try:
        _fails_holding_a_token()
    except ValueError:
        structlog.get_logger("t").error("share_call_error", exc_info=True)
    text = out.getvalue()
    assert "share_call_error" in text
    assert "ValueError" in text
    assert "_fails_holding_a_token" in text
    assert SECRET not in text


class _Changing(dict[int, str]):
    """A dict another thread is changing while it is read: iterating it raises, as CPython does."""

    def items(self) -> ItemsView[int, str]:  # type: ignore[override]  # it never returns
        raise RuntimeError("dictionary changed size during iteration")


def test_a_console_traceback_is_written_while_another_thread_changes_a_local_dict() -> None:
    out = io.StringIO()
    configure_logging(role="worker", fmt="console", stream=out)
    posts = _Changing({1: "post"})
    try:
        raise KeyError(f"id ({len(posts)} posts)")
    except KeyError:
        structlog.get_logger("t").error("share_call_error", exc_info=True)  # must not raise
    text = out.getvalue()
    assert "share_call_error" in text
    assert "KeyError" in text
