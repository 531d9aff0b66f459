"""The console channel: a real local channel for dry runs and demos.

Publishing appends one JSON line per share to ``<home>/console/<account>.jsonl``,
idempotently: the file itself is the record of what was published. Under an
exclusive lock shared by every worker process, a publisher reads the lines other
processes appended since it last looked, and writes a share's line only if no line
holds that share yet. There is no second record to fall out of step with the
first, so a crash at any point leaves either the line or nothing.
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from workers.channels import PermanentChannelError, Post, Published

CHANNEL = "console"
SHARE_ID = re.compile(rb'\{"share_id":"([0-9a-f-]{36})"')


@dataclass
class _AccountFile:
    """One account's file as this process knows it: open, and read up to ``offset``."""

    fd: int
    offset: int = 0
    torn: bool = False
    published: set[str] = field(default_factory=set)
    threads: threading.Lock = field(default_factory=threading.Lock)

    def catch_up(self) -> None:
        """Learn the shares other processes published since we last looked."""
        size = os.fstat(self.fd).st_size
        if size < self.offset:  # truncated by hand: start over
            self.offset, self.published = 0, set()
        if size == self.offset:
            return
        chunk = os.pread(self.fd, size - self.offset, self.offset)
        complete = chunk.rfind(b"\n") + 1
        for line in chunk[:complete].splitlines():
            # Only whole lines count: a torn one (a crash mid-write) is not a post.
            found = SHARE_ID.match(line) if line.endswith(b"}") else None
            if found:
                self.published.add(found.group(1).decode())
        self.offset += complete
        self.torn = complete < len(chunk)


class ConsolePublisher:
    channel = CHANNEL

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._files: dict[str, _AccountFile] = {}
        self._uris: dict[str, str] = {}
        self._guard = threading.Lock()

    def publish(self, post: Post) -> Published:
        share = str(post.share_id)
        with self._locked(post.account_name) as account:
            if share not in account.published:
                line = orjson.dumps({
                    "share_id": share,
                    "workspace_id": post.workspace_id,
                    "account": post.account_name,
                    "text": post.text,
                    "scheduled_at": post.scheduled_at.isoformat(),
                    "published_at": datetime.now(UTC).isoformat(),
                    "attempt": post.attempt,
                }) + b"\n"
                # One write on an O_APPEND descriptor, under the lock. No fsync: a line must
                # survive the worker being killed (the page cache keeps it), not a power cut.
                if account.torn:
                    line = b"\n" + line  # end the torn line so ours stands alone
                os.write(account.fd, line)
                account.offset = os.fstat(account.fd).st_size
                account.torn = False
                account.published.add(share)
        return self._published(post)

    def find(self, post: Post) -> Published | None:
        with self._locked(post.account_name) as account:
            found = str(post.share_id) in account.published
        return self._published(post) if found else None

    def lines_for(self, account_name: str) -> list[dict[str, object]]:
        path = self._path(account_name)
        if not path.exists():
            return []
        lines = []
        for raw in path.read_bytes().splitlines():
            try:
                lines.append(orjson.loads(raw))
            except orjson.JSONDecodeError:
                continue  # a torn line
        return lines

    def _path(self, account_name: str) -> Path:
        if "/" in account_name or account_name.startswith("."):
            raise PermanentChannelError(f"account name {account_name!r} cannot name a console file")
        return self.folder / f"{account_name}.jsonl"

    def _published(self, post: Post) -> Published:
        base = self._uris.get(post.account_name)
        if base is None:  # resolving a path costs several system calls: once per account
            base = self._uris[post.account_name] = self._path(post.account_name).resolve().as_uri()
        return Published(external_id=str(post.share_id), url=f"{base}#{post.share_id}")

    def _account(self, account_name: str) -> _AccountFile:
        with self._guard:
            account = self._files.get(account_name)
            if account is not None and os.fstat(account.fd).st_nlink == 0:
                os.close(account.fd)  # someone removed the file to start over
                account = None
            if account is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                fd = os.open(self._path(account_name), os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
                account = self._files[account_name] = _AccountFile(fd)
            return account

    @contextmanager
    def _locked(self, account_name: str) -> Iterator[_AccountFile]:
        account = self._account(account_name)
        # flock excludes other processes; this process's threads share the descriptor,
        # so they take a thread lock first.
        with account.threads:
            fcntl.flock(account.fd, fcntl.LOCK_EX)
            try:
                account.catch_up()
                yield account
            finally:
                fcntl.flock(account.fd, fcntl.LOCK_UN)
