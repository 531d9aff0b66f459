"""`followthrough log tail` narrowed to one share, account, workspace or level, as an operator
runs it: over the log lines a worker really writes (``--lines``, a failing Mastodon share and
a sent console share, each line with its bound context) and over the event log those shares
left."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import orjson
import pytest
from psycopg_pool import ConnectionPool

from events.store import EventStore
from followthrough.log_lines import Filters
from followthrough.logs import configure_logging
from followthrough.tools import ShareAccounts
from scheduler.services import accounts, workspaces
from scheduler.services.shares import PlanShare
from tests.support.cli import cli, command_env, logging_restored
from tests.support.fake_mastodon import FakeMastodon
from tests.support.shares import PLAN, WS, Clock, runtime, share_service
from tests.support.system import wait_until
from workers.channels.console import ConsolePublisher
from workers.channels.mastodon import MastodonPublisher
from workers.execution import execute_share

pytestmark = pytest.mark.e2e

OTHER_WS = "globex"


@pytest.fixture
def env(database_url: str, broker_url: str, tmp_path: Path) -> dict[str, str]:
    return command_env(database_url, broker_url, tmp_path)


@pytest.fixture
def network() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=httpx.Timeout(5.0, read=2.0)) as c:
        yield c


def account_in(pool: ConnectionPool[Any], workspace: str, name: str, channel: str,
               config: dict[str, Any]) -> accounts.Account:
    with pool.connection() as conn:
        workspaces.ensure_workspace(conn, workspace)
        return accounts.create(conn, workspace_id=workspace, name=name, channel=channel, config=config,
                               default_response_plan=None, late_policy="send", max_lateness_seconds=None)


@pytest.fixture
def worker_run(store: EventStore, pool: ConnectionPool[Any], mastodon: FakeMastodon, network: httpx.Client,
               tmp_path: Path) -> dict[str, Any]:
    """A worker's JSON log file after two shares: acme's launch-team on Mastodon fails (its token
    variable is not set), globex's newsroom on the console is sent."""
    shares = share_service(pool, store)
    failing = account_in(pool, WS, "launch-team", "mastodon", {
        "base_url": mastodon.base_url, "access_token_env": "LAUNCH_MASTODON_TOKEN", "visibility": "public"})
    sent = account_in(pool, OTHER_WS, "newsroom", "console", {})
    path = tmp_path / "worker.log"
    with path.open("w") as out, logging_restored():
        configure_logging(role="worker", level="debug", fmt="json", stream=out)  # as to a file or a pipe
        failing_share = shares.plan(WS, PlanShare(account_id=failing.id, text="Launch day", scheduled_at=None,
                                                  response_plan=PLAN), actor="test").share_id
        sent_share = shares.plan(OTHER_WS, PlanShare(account_id=sent.id, text="Today's news", scheduled_at=None,
                                                     response_plan=PLAN), actor="test").share_id
        assert execute_share(runtime(pool, store, MastodonPublisher(network, env={}), clock=Clock()),
                             failing_share) == "share_failed"
        assert execute_share(runtime(pool, store, ConsolePublisher(tmp_path / "console"), clock=Clock()),
                             sent_share) == "share_sent"
    return {"path": str(path), "failing": failing, "sent": sent, "failing_share": failing_share,
            "sent_share": sent_share}


def lines(ran: Any) -> list[dict[str, Any]]:
    assert ran.returncode == 0, ran.stderr
    return [orjson.loads(line) for line in ran.stdout.splitlines()]


def tail_lines(env: dict[str, str], path: str, *filters: str) -> list[dict[str, Any]]:
    return lines(cli("log", "tail", "--lines", path, "--from-start", "--no-follow", "--format", "json", *filters,
                     env=env))


def test_log_tail_keeps_the_worker_lines_of_one_account_share_workspace_or_level(
    env: dict[str, str], worker_run: dict[str, Any]
) -> None:
    path, failing, sent = worker_run["path"], worker_run["failing"], worker_run["sent"]
    everything = tail_lines(env, path)
    assert {line["event"] for line in everything} >= {"share_planned", "share_publishing", "share_failed",
                                                      "share_sent"}
    # By account name, or by id: that account's lines, the failure with its hint among them
    by_name = tail_lines(env, path, "--account", "launch-team")
    assert {line["event"] for line in by_name} >= {"share_planned", "share_publishing", "share_failed"}
    assert {line.get("account_name", line.get("account")) for line in by_name} == {"launch-team"}
    [failed] = [line for line in by_name if line["event"] == "share_failed"]
    assert "LAUNCH_MASTODON_TOKEN" in failed["hint"]
    assert tail_lines(env, path, "--account", str(failing.id)) == [
        line for line in by_name if line["event"] != "share_planned"]  # the API's line names the account only
    by_id = tail_lines(env, path, "--account", str(sent.id))
    assert by_id
    assert {line["account_id"] for line in by_id} == {str(sent.id)}
    # By share and by workspace
    one_share = tail_lines(env, path, "--share", str(worker_run["sent_share"]))
    assert {line["event"] for line in one_share} >= {"share_publishing", "share_sent"}
    assert {line["share_id"] for line in one_share} == {str(worker_run["sent_share"])}
    other = tail_lines(env, path, "--workspace", OTHER_WS)
    assert other
    assert {line["workspace_id"] for line in other} == {OTHER_WS}
    assert "share_sent" in {line["event"] for line in other}
    # By level: that level and above, from every account
    rank = {"debug": 0, "info": 1, "warning": 2, "error": 3, "critical": 4}
    serious = tail_lines(env, path, "--level", "warning")
    assert "share_failed" in {line["event"] for line in serious}
    assert all(rank[line["level"]] >= 2 for line in serious)
    assert len(serious) < len(everything)
    assert tail_lines(env, path, "--level", "WARN") == serious
    assert tail_lines(env, path, "--level", "debug") == everything
    # Filters combine: newsroom's share was sent, so nothing of it is a warning
    assert tail_lines(env, path, "--level", "warning", "--account", "newsroom") == []
    assert tail_lines(env, path, "--workspace", OTHER_WS, "--account", "launch-team") == []


def test_log_tail_renders_the_kept_lines_like_the_rest_in_a_console(
    env: dict[str, str], worker_run: dict[str, Any]
) -> None:
    ran = cli("log", "tail", "--lines", worker_run["path"], "--from-start", "--no-follow", "--format", "console",
              "--level", "error", env=env)
    assert ran.returncode == 0, ran.stderr
    [line] = [text for text in ran.stdout.splitlines() if "share_failed" in text]
    assert not line.startswith("{")
    assert "launch-team" in line
    assert "[error" in line


def test_log_tail_reads_piped_lines_with_no_server_and_no_home(worker_run: dict[str, Any], tmp_path: Path) -> None:
    # Given the lines piped in as from `kubectl logs`, in a shell with no database and no home
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BROKER_URL", "FOLLOWTHROUGH_HOME")}
    piped = "not a JSON line\n" + Path(worker_run["path"]).read_text()
    # When they go through `log tail --lines -` in a process of its own
    ran = subprocess.run([sys.executable, "-m", "followthrough.cli", "log", "tail", "--lines", "-", "--format", "json",
                          "--account", "launch-team", "--level", "error"],
                         input=piped, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False)
    # Then the account's error lines come out, and the one line it could not read is said once
    kept = lines(ran)
    assert [line["event"] for line in kept] == ["share_failed"]
    assert kept[0]["account_name"] == "launch-team"
    assert ran.stderr.count("FOLLOWTHROUGH_LOG_FORMAT=json") == 1
    assert not (tmp_path / ".followthrough").exists()  # no home made, no server started


def test_log_tail_keeps_the_events_of_one_account_share_or_workspace(
    env: dict[str, str], store: EventStore, worker_run: dict[str, Any]
) -> None:
    failing_stream, sent_stream = f"share-{worker_run['failing_share']}", f"share-{worker_run['sent_share']}"
    wait_until(lambda: {r.stream_id for r in store.read_all()} >= {failing_stream, sent_stream}, timeout=30,
               what="both shares' events below the log's horizon")

    def tail_events(*filters: str) -> list[dict[str, Any]]:
        return lines(cli("log", "tail", "--from-start", "--no-follow", "--format", "json", *filters, env=env))

    everything = tail_events()
    assert {e["stream_id"] for e in everything} == {failing_stream, sent_stream}
    for filters, stream in (
        (("--account", "launch-team"), failing_stream),
        (("--account", str(worker_run["sent"].id)), sent_stream),
        (("--share", str(worker_run["failing_share"])), failing_stream),
        (("--workspace", OTHER_WS), sent_stream),
    ):
        kept = tail_events(*filters)
        assert {e["stream_id"] for e in kept} == {stream}, filters
        assert len(kept) == sum(e["stream_id"] == stream for e in everything), filters
    assert tail_events("--workspace", OTHER_WS, "--account", "launch-team") == []


@pytest.mark.parametrize(("args", "says"), [
    (("--lines", "-", "--level", "loud"), "is not a level: pass one of debug, info, warning, error, critical"),
    (("--lines", "-", "--share", "yesterday's"), "is not a share id: pass the share's UUID"),
    (("--lines", "-", "--account", " "), "--account is empty: pass the account's id or its name"),
    (("--lines", "/nonexistent/worker.log"), "no such file: pass the file the roles' JSON log lines"),
    (("--level", "error"), "the event log has no levels: pass --lines FILE"),
], ids=["level", "share", "account", "file", "level without lines"])
def test_log_tail_bad_filters_get_the_fix_not_a_traceback(env: dict[str, str], args: tuple[str, ...],
                                                           says: str) -> None:
    ran = cli("log", "tail", "--no-follow", *args, env=env)
    assert ran.returncode == 2
    assert says in ran.stderr
    assert "Traceback" not in ran.stderr


def test_an_unknown_share_id_is_a_uuid_check_not_a_lookup(env: dict[str, str], tmp_path: Path) -> None:
    # A well-formed id of a share the file does not mention: nothing kept, no error
    empty = tmp_path / "empty.log"
    empty.write_text('{"event": "share_sent", "share_id": "00000000-0000-4000-8000-000000000001"}\n')
    assert tail_lines(env, str(empty), "--share", str(UUID(int=7))) == []


def test_log_tail_follows_a_growing_file_keeping_only_what_the_filters_ask(tmp_path: Path) -> None:
    # Given a log file with one of acme's error lines already in it
    path = tmp_path / "worker.log"

    def line(event: str, level: str, workspace: str) -> str:
        return orjson.dumps({"event": event, "level": level, "workspace_id": workspace}).decode() + "\n"

    path.write_text(line("share_failed", "error", WS))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BROKER_URL")}
    proc = subprocess.Popen([sys.executable, "-m", "followthrough.cli", "log", "tail", "--lines", str(path),
                             "--from-start", "--format", "json", "--workspace", WS, "--level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    assert proc.stdout is not None
    try:
        # When it has printed what was there (it follows from then on)
        assert orjson.loads(proc.stdout.readline())["event"] == "share_failed"
        # And lines are appended: another workspace's, an info line, then one it asked for
        with path.open("a") as out:
            out.write(line("share_failed", "error", OTHER_WS))
            out.write(line("share_sent", "info", WS))
            out.write(line("share_retry_scheduled", "warning", WS))
        # Then the next line it prints is the one it asked for
        assert orjson.loads(proc.stdout.readline())["event"] == "share_retry_scheduled"
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        proc.stdout.close()
        assert proc.stderr is not None
        proc.stderr.close()


def test_a_tail_that_starts_after_the_plan_finds_the_shares_account_in_its_stream(
    store: EventStore, worker_run: dict[str, Any]
) -> None:
    accounts = ShareAccounts(store)
    failing = worker_run["failing"]
    assert accounts(f"share-{worker_run['failing_share']}") == (str(failing.id), "launch-team")
    assert accounts("calendars-acme") is None  # not a share's stream
    later = [r for r in store.read_all() if r.stream_id == f"share-{worker_run['sent_share']}"][-1]
    assert Filters(account="newsroom").keeps_event(later, accounts)
    assert not Filters(account="launch-team").keeps_event(later, accounts)
