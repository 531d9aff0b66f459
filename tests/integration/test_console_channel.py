"""The console channel on a real file system: one line per share, whoever publishes it;
each account's replies file next to its posts file, in its workspace's folder."""

from __future__ import annotations

import argparse
import multiprocessing
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from psycopg_pool import ConnectionPool

from events.store import EventStore
from followthrough import console_replies
from followthrough.run import Run
from followthrough.settings import Settings
from tests.support.replies import account_on, sent_share
from tests.support.shares import WS, Clock, runtime, share_service
from workers.channels import Answer, PermanentChannelError, Post, SharePost
from workers.channels.console import ConsolePublisher
from workers.channels.console_replies import write_reply


def post(share_id: uuid.UUID, account: str = "main") -> Post:
    return Post(share_id=share_id, workspace_id="acme", account_name=account, account_config={}, text="hello",
                scheduled_at=datetime(2026, 11, 25, tzinfo=UTC), idempotency_key=f"k-{share_id}", attempt=1)


def _publish_all(folder: str, ids: list[str]) -> None:
    publisher = ConsolePublisher(Path(folder))
    for share in ids:
        publisher.publish(post(uuid.UUID(share)))


def test_publishing_a_share_twice_writes_one_line(tmp_path: Path) -> None:
    publisher = ConsolePublisher(tmp_path)
    share = uuid.uuid4()
    first = publisher.publish(post(share))
    again = publisher.publish(post(share))
    assert first == again
    assert [line["share_id"] for line in publisher.lines_for("acme", "main")] == [str(share)]


def test_processes_and_threads_publishing_the_same_shares_write_each_once(tmp_path: Path) -> None:
    # Given 200 shares that three processes and four threads all try to publish
    ids = [str(uuid.uuid4()) for _ in range(200)]
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_publish_all, args=(str(tmp_path), ids)) for _ in range(3)]
    threads = [threading.Thread(target=_publish_all, args=(str(tmp_path), ids)) for _ in range(4)]
    for p in procs:
        p.start()
    for t in threads:
        t.start()
    for p in procs:
        p.join()
    for t in threads:
        t.join()
    # Then the file holds one line per share
    lines = ConsolePublisher(tmp_path).lines_for("acme", "main")
    assert sorted(line["share_id"] for line in lines) == sorted(ids)


def test_find_sees_a_line_written_by_another_process_and_ignores_a_torn_line(tmp_path: Path) -> None:
    written, torn = uuid.uuid4(), uuid.uuid4()
    ConsolePublisher(tmp_path).publish(post(written))
    with (tmp_path / "acme" / "main.jsonl").open("ab") as f:
        f.write(f'{{"share_id":"{torn}","text":"cut sh'.encode())  # a crash mid-write
    other = ConsolePublisher(tmp_path)
    assert other.find(post(written)) is not None
    assert other.find(post(torn)) is None
    # And publishing the torn share again writes a whole line of its own
    other.publish(post(torn))
    assert [line["share_id"] for line in other.lines_for("acme", "main")] == [str(written), str(torn)]
    assert ConsolePublisher(tmp_path).find(post(torn)) is not None


def test_publishers_in_turn_each_read_on_from_the_end_of_their_own_line(tmp_path: Path) -> None:
    # Given two processes' publishers on one account, writing in turn
    one, two = ConsolePublisher(tmp_path), ConsolePublisher(tmp_path)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    one.publish(post(a))
    two.publish(post(b))
    one.publish(post(c))
    # Then each knows every share, the other's included, and has read the file to its end
    path = tmp_path / "acme" / "main.jsonl"
    for publisher in (one, two):
        assert all(publisher.find(post(s)) is not None for s in (a, b, c))
        assert publisher._account("acme", "main").offset == path.stat().st_size
    # And publishing any of them again writes nothing
    two.publish(post(a))
    one.publish(post(b))
    assert [line["share_id"] for line in one.lines_for("acme", "main")] == [str(a), str(b), str(c)]


def test_a_removed_file_starts_over(tmp_path: Path) -> None:
    publisher = ConsolePublisher(tmp_path)
    publisher.publish(post(uuid.uuid4()))
    (tmp_path / "acme" / "main.jsonl").unlink()
    share = uuid.uuid4()
    publisher.publish(post(share))
    assert [line["share_id"] for line in publisher.lines_for("acme", "main")] == [str(share)]


# --- the replies file ---------------------------------------------------------------------


def share_post(workspace: str, share_id: uuid.UUID, account: str = "main") -> SharePost:
    return SharePost(share_id=share_id, workspace_id=workspace, account_name=account, account_config={},
                     external_id=str(share_id), url=None, sent_at=datetime(2026, 11, 25, tzinfo=UTC))


def test_replies_and_answers_are_kept_next_to_the_posts_in_the_workspace_folder(tmp_path: Path) -> None:
    # Given two workspaces, each with an account named "main" and a share posted on it
    publisher = ConsolePublisher(tmp_path)
    ours, theirs = uuid.uuid4(), uuid.uuid4()
    publisher.publish(post(ours))
    publisher.publish(Post(share_id=theirs, workspace_id="globex", account_name="main", account_config={},
                           text="hello", scheduled_at=datetime(2026, 11, 25, tzinfo=UTC),
                           idempotency_key=f"k-{theirs}", attempt=1))
    # When someone replies under acme's share, and acme answers the reply through the channel
    asked = write_reply(tmp_path, "acme", "main", share_id=str(ours), text="Linux too?", author="ana")
    answered = publisher.answer(Answer(post=share_post("acme", ours), reply_id=asked["reply_id"], text="Yes.",
                                       idempotency_key=f"answer-{ours}", attempt=1,
                                       requested_at=datetime.now(UTC)))
    # Then the reply and the answer are in acme's replies file, next to acme's posts
    replies_file = tmp_path / "acme" / "main.replies.jsonl"
    lines = [orjson.loads(x) for x in replies_file.read_bytes().splitlines()]
    assert [(x["text"], x["by_account"]) for x in lines] == [("Linux too?", False), ("Yes.", True)]
    assert answered.url == f"{replies_file.resolve().as_uri()}#{lines[1]['reply_id']}"
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.jsonl")) == [
        "acme/main.jsonl", "acme/main.replies.jsonl", "globex/main.jsonl"]
    # And acme's thread holds them, globex's "main" sees none of them
    assert [p.text for p in publisher.read_thread(share_post("acme", ours))] == ["Linux too?", "Yes."]
    assert publisher.read_thread(share_post("globex", theirs)) == []
    assert publisher.find_answer(Answer(post=share_post("acme", ours), reply_id=asked["reply_id"], text="Yes.",
                                        idempotency_key=f"answer-{ours}", attempt=2,
                                        requested_at=datetime.now(UTC))) == answered


def test_replies_and_answers_written_at_the_old_place_before_an_upgrade_are_still_read(tmp_path: Path) -> None:
    # Given a replies file where it was kept before replies moved into the workspace's folder,
    # holding a reply and its answer under acme's share, and a reply under another share
    publisher = ConsolePublisher(tmp_path)
    ours, other = uuid.uuid4(), uuid.uuid4()
    publisher.publish(post(ours))
    legacy = tmp_path / "main.replies.jsonl"
    legacy.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in [
        {"reply_id": "r1", "share_id": str(ours), "parent_id": None, "author": "ana", "text": "Linux too?",
         "created_at": "2026-11-29T10:00:00+00:00", "by_account": False, "key": None},
        {"reply_id": "r2", "share_id": str(ours), "parent_id": "r1", "author": "main", "text": "Yes.",
         "created_at": "2026-11-29T10:05:00+00:00", "by_account": True, "key": f"answer-{ours}"},
        {"reply_id": "r3", "share_id": str(other), "parent_id": None, "author": "bo", "text": "Not yours",
         "created_at": "2026-11-29T10:06:00+00:00", "by_account": False, "key": None},
    ]))
    # And a reply written after the upgrade, at the new place
    write_reply(tmp_path, "acme", "main", share_id=str(ours), text="And arm64?", author="ana")
    # When the thread is read, then both places count, the share's lines only, in time order
    thread = publisher.read_thread(share_post("acme", ours))
    assert [(p.text, p.by_account) for p in thread] == [("Linux too?", False), ("Yes.", True), ("And arm64?", False)]
    assert thread[0].url == f"{legacy.resolve().as_uri()}#r1"
    # And the answer recorded there is found by its key, so it is never posted again
    found = publisher.find_answer(Answer(post=share_post("acme", ours), reply_id="r1", text="Yes.",
                                         idempotency_key=f"answer-{ours}", attempt=2,
                                         requested_at=datetime.now(UTC)))
    assert found is not None
    assert found.external_id == "r2"


def test_an_account_whose_posts_file_would_be_another_accounts_replies_file_is_refused(tmp_path: Path) -> None:
    # Given a console account named like another account's replies file ("main" + ".replies")
    publisher = ConsolePublisher(tmp_path)
    # When a share is published on it, or a reply written under it, then the channel refuses, naming it
    with pytest.raises(PermanentChannelError, match=r"main\.replies"):
        publisher.publish(post(uuid.uuid4(), account="main.replies"))
    with pytest.raises(PermanentChannelError, match=r"main\.replies"):
        write_reply(tmp_path, "acme", "main.replies", share_id=str(uuid.uuid4()), text="hi", author="ana")
    # And nothing was written
    assert list(tmp_path.rglob("*.jsonl")) == []


def test_the_console_reply_command_writes_into_the_shares_workspace_folder(
    settings: Settings, store: EventStore, pool: ConnectionPool[Any], capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a console share sent in the workspace "acme" (not the default one)
    clock = Clock()
    rt = runtime(pool, store, ConsolePublisher(settings.console_dir.resolve()), clock=clock)
    share_id = sent_share(rt, share_service(pool, store, clock=clock), account_on(pool, "console", {}, name="team"))
    # When `followthrough console reply SHARE_ID "text" --author ana` runs
    args = argparse.Namespace(share_id=str(share_id), text="Does it run offline?", author="ana", name=None, to=None)
    assert console_replies.reply(Run(args=args, settings=settings)) == 0
    # Then the reply is in acme's replies file, next to the account's posts, and its id was printed
    folder = settings.console_dir / WS
    [line] = [orjson.loads(x) for x in (folder / "team.replies.jsonl").read_bytes().splitlines()]
    assert (line["share_id"], line["text"], line["author"]) == (str(share_id), "Does it run offline?", "ana")
    assert capsys.readouterr().out.splitlines()[-1] == line["reply_id"]  # (log lines go to stdout too)
    assert (folder / "team.jsonl").exists()
    assert not (settings.console_dir / "team.replies.jsonl").exists()
