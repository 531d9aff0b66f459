"""Which renderer a process's lines go through: the console renderer in a terminal, JSON for
a log pipeline; and what a process tells the processes whose lines it passes on through a
pipe of its own (Dramatiq's worker processes), decided on the stream that reaches the reader."""

from __future__ import annotations

import io
import os
import pty
from collections.abc import Iterator

import pytest

from followthrough.logs import format_for_children, renderer_choice


@pytest.fixture
def terminal() -> Iterator[io.TextIOWrapper]:
    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as out:
        yield out
    os.close(leader)


def test_auto_is_the_console_renderer_with_colours_in_a_terminal_and_json_elsewhere(
    terminal: io.TextIOWrapper,
) -> None:
    assert renderer_choice("auto", terminal) == (False, True)
    assert renderer_choice("auto", io.StringIO()) == (True, False)


def test_a_format_given_wins_and_colours_can_be_said_for_a_pipe(terminal: io.TextIOWrapper) -> None:
    assert renderer_choice("json", terminal) == (True, False)
    assert renderer_choice("console", io.StringIO()) == (False, False)
    assert renderer_choice("console", io.StringIO(), colors=True) == (False, True)  # a pipe to a terminal
    assert renderer_choice("auto", terminal, colors=False) == (False, False)


def test_children_behind_a_pipe_are_told_the_format_of_the_stream_their_lines_reach(
    terminal: io.TextIOWrapper,
) -> None:
    assert format_for_children("auto", terminal) == {"FOLLOWTHROUGH_LOG_FORMAT": "console",
                                                     "FOLLOWTHROUGH_LOG_COLORS": "true"}
    assert format_for_children("auto", io.StringIO()) == {"FOLLOWTHROUGH_LOG_FORMAT": "json"}
    assert format_for_children("json", terminal) == {"FOLLOWTHROUGH_LOG_FORMAT": "json"}
    assert format_for_children("console", io.StringIO()) == {"FOLLOWTHROUGH_LOG_FORMAT": "console",
                                                             "FOLLOWTHROUGH_LOG_COLORS": "false"}


def test_a_closed_stream_is_no_terminal() -> None:
    closed = io.StringIO()
    closed.close()
    assert renderer_choice("auto", closed) == (True, False)
