"""The runbook's examples run as written: every `followthrough` command of the shell blocks of
docs/operations.md, every whole `followthrough` command quoted in its prose, its SQL and its
key-making one-liner, run against a system with a sent share (as an operator runs them:
the `followthrough` entry point, the database server). What cannot run here (kubectl,
the long-running roles) and the table's synopses (placeholders) are left out, the
synopses checked for options the command does not have. A TOKEN_ID in an example is
filled, as a reader fills it, with the id the command before printed."""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from events.store import EventStore
from followthrough.cli import parser
from tests.support.cli import cli, command_env
from tests.support.replies import account_on, catch_up, sent_share
from tests.support.shares import Clock, runtime, share_service
from workers.channels.console import ConsolePublisher

pytestmark = pytest.mark.e2e

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
BLOCK = re.compile(r"^[ \t]*```(\w+)\n(.*?)^[ \t]*```", re.M | re.S)
INLINE = re.compile(r"`((?:followthrough|python3) [^`]+)`")
LONG_RUNNING = {"up", "api", "dispatcher", "projector", "worker"}
# An id shortened in the text ("2f6c…"): the example stands for the id the command before printed.
# A placeholder the reader fills from what the command before printed (TOKEN_ID: an id).
PLACEHOLDER_ID = re.compile(r"\bTOKEN_ID\b")
# Examples that do not run as written, and how they fail: each is run as written (and must
# still fail so: once the runbook is corrected, take it out of here), then as meant.
def runbook() -> str:
    return RUNBOOK.read_text()


def shell_examples(text: str) -> list[str]:
    """Each command line of the ``sh`` blocks, comments dropped, in the runbook's order."""
    lines = []
    for lang, body in BLOCK.findall(text):
        if lang != "sh":
            continue
        for line in body.splitlines():
            words = shlex.split(line, comments=True)
            if words:
                lines.append(shlex.join(words))
    return lines


def is_synopsis(command: str) -> bool:
    """A synopsis (the commands table), not an example: optional parts or placeholders."""
    return bool(re.search(r"\[|\\\||\b[A-Z][A-Z_0-9]*\b", command.split(" ", 2)[-1]))


def prose_examples(text: str) -> list[str]:
    """The whole commands quoted in the prose that run here as written."""
    found = []
    for command in dict.fromkeys(INLINE.findall(text)):
        words = command.split()
        if command.startswith("followthrough") and (words[1] in LONG_RUNNING or is_synopsis(command)):
            continue
        found.append(command)
    return found


def sql_examples(text: str) -> list[str]:
    statements = [body for lang, body in BLOCK.findall(text) if lang == "sql"]
    statements += [s for s in re.findall(r"`(SELECT [^`]+)`", text) if " FROM " in s]  # not `SELECT f(pid)`
    return statements


@pytest.fixture
def system(store: EventStore, pool: ConnectionPool[Any], database_url: str, broker_url: str,
           tmp_path: Path) -> dict[str, str]:
    """A sent console share in workspace acme, its read models caught up."""
    shares = share_service(pool, store)
    rt = runtime(pool, store, ConsolePublisher(tmp_path / "console"), clock=Clock())
    sent_share(rt, shares, account_on(pool, "console", {}))
    catch_up(store, database_url)
    return command_env(database_url, broker_url, tmp_path / "home")


def run_example(command: str, env: dict[str, str], printed: list[str]) -> Any:
    if command.startswith("python3 "):  # the project's Python (the one `make run` installs)
        return subprocess.run([sys.executable, *shlex.split(command)[1:]], capture_output=True, text=True,
                              timeout=60, check=False)
    words = shlex.split(command)
    # The placeholder filled as a reader would: with the id the command before printed
    words = [PLACEHOLDER_ID.sub(_last_id(printed), w) if PLACEHOLDER_ID.search(w) else w for w in words]
    assert words[0] == "followthrough"
    return cli(*words[1:], env=env)


def _last_id(printed: list[str]) -> str:
    ids = re.findall(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "\n".join(printed))
    assert ids, "no id printed before an example that takes one"
    return ids[-1]


def test_the_runbook_has_the_examples_this_test_runs() -> None:
    text = runbook()
    assert len(shell_examples(text)) == 13
    assert "followthrough projections rebuild shares" in prose_examples(text)
    assert len(sql_examples(text)) == 2


def test_every_shell_and_prose_example_of_the_runbook_runs_as_written(system: dict[str, str]) -> None:
    text = runbook()
    printed: list[str] = []
    failed = []
    for command in [*shell_examples(text), *prose_examples(text)]:
        ran = run_example(command, system, printed)
        printed.append(ran.stdout)
        if ran.returncode != 0 or "Traceback" in ran.stderr:
            failed.append(f"{command}: exit {ran.returncode}: {ran.stderr.strip()[-500:]}")
    assert failed == []


def test_the_runbook_sql_runs_on_a_migrated_database(database_url: str) -> None:
    # (in a transaction rolled back: roles belong to the whole server)
    with psycopg.connect(database_url) as conn:
        for statement in sql_examples(runbook()):
            conn.execute(statement)
        conn.rollback()


def _subcommand(root: argparse.ArgumentParser, words: list[str]) -> argparse.ArgumentParser:
    current = root
    for word in words:
        actions = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions or word not in actions[0].choices:
            break
        current = actions[0].choices[word]
    return current


def test_every_option_the_commands_table_shows_is_one_the_command_takes() -> None:
    rows = [c for c in dict.fromkeys(INLINE.findall(runbook())) if c.startswith("followthrough ")]
    unknown = []
    for synopsis in rows:
        words = synopsis.replace("\\|", "|").split()
        command = _subcommand(parser(), words[1:])
        takes = {s for a in command._actions for s in a.option_strings}
        unknown += [f"{synopsis}: {o}" for o in re.findall(r"--[a-z][a-z-]*", synopsis) if o not in takes]
    assert unknown == []
