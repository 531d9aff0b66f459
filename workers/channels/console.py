"""The console channel: a real local channel for dry runs and demos.

Publishing appends one JSON line per share to ``<home>/console/<account>.jsonl``.
It is idempotent per share: under an exclusive file lock it checks a marker
(``<account>.sent/<share id>``), then appends the line and writes the marker.
A crash between the two leaves a line without a marker; ``find`` (used when an
earlier attempt's outcome is unknown) scans the file, so the retry finds it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import orjson

from workers.channels import PermanentChannelError, Post, Published

CHANNEL = "console"


class ConsolePublisher:
    channel = CHANNEL

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def publish(self, post: Post) -> Published:
        path = self._path(post)
        with self._locked(path):
            marker = self._marker(post)
            if marker.exists():
                return self._published(post)
            line = (
                orjson.dumps(
                    {
                        "share_id": str(post.share_id),
                        "workspace_id": post.workspace_id,
                        "account": post.account_name,
                        "text": post.text,
                        "scheduled_at": post.scheduled_at.isoformat(),
                        "published_at": datetime.now(UTC).isoformat(),
                        "attempt": post.attempt,
                    }
                )
                + b"\n"
            )
            # No fsync: a line must survive the worker being killed (the page cache keeps
            # it), not the machine losing power; this is a demo channel.
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
            marker.parent.mkdir(exist_ok=True)
            marker.touch()
        return self._published(post)

    def find(self, post: Post) -> Published | None:
        path = self._path(post)
        with self._locked(path):
            if self._marker(post).exists():
                return self._published(post)
            needle = str(post.share_id)
            if path.exists():
                with path.open("rb") as lines:
                    for raw in lines:
                        if needle.encode() in raw and orjson.loads(raw).get("share_id") == needle:
                            self._marker(post).parent.mkdir(exist_ok=True)
                            self._marker(post).touch()
                            return self._published(post)
        return None

    def lines_for(self, account_name: str) -> list[dict[str, object]]:
        path = self.folder / f"{account_name}.jsonl"
        if not path.exists():
            return []
        return [orjson.loads(raw) for raw in path.read_bytes().splitlines() if raw.strip()]

    def _path(self, post: Post) -> Path:
        if "/" in post.account_name or post.account_name.startswith("."):
            raise PermanentChannelError(f"account name {post.account_name!r} cannot name a console file")
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder / f"{post.account_name}.jsonl"

    def _marker(self, post: Post) -> Path:
        return self.folder / f"{post.account_name}.sent" / str(post.share_id)

    def _published(self, post: Post) -> Published:
        path = self.folder / f"{post.account_name}.jsonl"
        return Published(external_id=str(post.share_id), url=f"{path.resolve().as_uri()}#{post.share_id}")

    @contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        lock_path = path.with_suffix(".lock")
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
