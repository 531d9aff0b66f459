"""The console channel on a real file system: one line per share, whoever publishes it."""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from workers.channels import Post
from workers.channels.console import ConsolePublisher


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


def test_a_removed_file_starts_over(tmp_path: Path) -> None:
    publisher = ConsolePublisher(tmp_path)
    publisher.publish(post(uuid.uuid4()))
    (tmp_path / "acme" / "main.jsonl").unlink()
    share = uuid.uuid4()
    publisher.publish(post(share))
    assert [line["share_id"] for line in publisher.lines_for("acme", "main")] == [str(share)]
