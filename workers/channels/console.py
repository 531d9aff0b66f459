"""The console channel: a real local channel for dry runs and demos.

Publishing appends one JSON line per share to ``<home>/console/<account>.jsonl``.
It is idempotent per share: under an exclusive file lock (shared by every worker
process) it checks a marker (``<account>.sent/<share id>``), then appends the line
and writes the marker. A crash between the two leaves a line without a marker;
``find`` (used when an earlier attempt's outcome is unknown) scans the file, so
the retry finds it instead of writing a second line.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from workers.channels import PermanentChannelError, Post, Published

CHANNEL = "console"


@dataclass
class _AccountFiles:
    """Open files of one account, kept for the life of the process (opening is not free)."""

    lock_fd: int
    append_fd: int
    markers: Path
    threads: threading.Lock = field(default_factory=threading.Lock)


class ConsolePublisher:
    channel = CHANNEL

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._accounts: dict[str, _AccountFiles] = {}
        self._guard = threading.Lock()

    def publish(self, post: Post) -> Published:
        with self._locked(post.account_name) as files:
            marker = files.markers / str(post.share_id)
            if marker.exists():
                return self._published(post)
            line = orjson.dumps({
                "share_id": str(post.share_id),
                "workspace_id": post.workspace_id,
                "account": post.account_name,
                "text": post.text,
                "scheduled_at": post.scheduled_at.isoformat(),
                "published_at": datetime.now(UTC).isoformat(),
                "attempt": post.attempt,
            }) + b"\n"
            # One write on an O_APPEND descriptor: lines never interleave. No fsync: a line
            # must survive the worker being killed (the page cache keeps it), not the
            # machine losing power; this is a demo channel.
            os.write(files.append_fd, line)
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT, 0o644))
        return self._published(post)

    def find(self, post: Post) -> Published | None:
        with self._locked(post.account_name) as files:
            marker = files.markers / str(post.share_id)
            if marker.exists():
                return self._published(post)
            needle = str(post.share_id)
            path = self._path(post.account_name)
            if path.exists():
                with path.open("rb") as lines:
                    for raw in lines:
                        if needle.encode() in raw and orjson.loads(raw).get("share_id") == needle:
                            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT, 0o644))
                            return self._published(post)
        return None

    def lines_for(self, account_name: str) -> list[dict[str, object]]:
        path = self._path(account_name)
        if not path.exists():
            return []
        return [orjson.loads(raw) for raw in path.read_bytes().splitlines() if raw.strip()]

    def _path(self, account_name: str) -> Path:
        if "/" in account_name or account_name.startswith("."):
            raise PermanentChannelError(f"account name {account_name!r} cannot name a console file")
        return self.folder / f"{account_name}.jsonl"

    def _published(self, post: Post) -> Published:
        path = self._path(post.account_name)
        return Published(external_id=str(post.share_id), url=f"{path.resolve().as_uri()}#{post.share_id}")

    def _files(self, account_name: str) -> _AccountFiles:
        with self._guard:
            files = self._accounts.get(account_name)
            if files is not None and os.fstat(files.append_fd).st_nlink == 0:
                # Someone removed the file (to start over): write to a new one.
                os.close(files.append_fd)
                os.close(files.lock_fd)
                files = None
            if files is None:
                path = self._path(account_name)
                self.folder.mkdir(parents=True, exist_ok=True)
                markers = self.folder / f"{account_name}.sent"
                markers.mkdir(exist_ok=True)
                files = _AccountFiles(
                    lock_fd=os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o644),
                    append_fd=os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
                    markers=markers,
                )
                self._accounts[account_name] = files
            return files

    @contextmanager
    def _locked(self, account_name: str) -> Iterator[_AccountFiles]:
        files = self._files(account_name)
        # flock excludes other processes; threads of this one share the descriptor, so
        # they take a thread lock first.
        with files.threads:
            fcntl.flock(files.lock_fd, fcntl.LOCK_EX)
            try:
                yield files
            finally:
                fcntl.flock(files.lock_fd, fcntl.LOCK_UN)
