"""The console channel: a real local channel for dry runs and demos.

Publishing appends one JSON line per share to ``<home>/console/<workspace>/<account>.jsonl``
(a folder per workspace: two workspaces' accounts of the same name never share a file;
the account's replies file, ``<account>.replies.jsonl``, sits next to it, so a console
account's name may not end in ``.replies``), idempotently: the file itself is the record
of what was published. Under an exclusive lock shared by every worker process, a
publisher reads the lines other processes appended since it last looked, and writes a
share's line only if no line holds that share yet. There is no second record to fall out of step with the
first, so a crash at any point leaves either the line or nothing.

Deleting a post appends a removal line, ``{"removed": <share id>, "account": ...,
"removed_at": ...}``, instead of rewriting the file: the file stays append-only (other
processes keep reading it from where they stopped) and keeps the history of what was
posted and taken down. A removed share is no longer found; publishing it again writes a
new line. A post's ``created_at`` is its line's ``published_at``.

A post's media are written beside the posts file, ``<workspace>/media/<sha256>.<ext>`` (one
file per content, shared by every post and account of the workspace), before the line, whose
``media`` names each file with its alt.
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
from uuid import UUID

import orjson

from scheduler.domain.share import ThreadPost
from workers.channels import Answer, Attachment, PermanentChannelError, Post, Published, SharePost
from workers.channels.console_replies import ConsoleThreads, file_name_of

CHANNEL = "console"
# A post's line starts with its share (and, for a thread's part after the first, its part).
SHARE_ID = re.compile(rb'\{"share_id":"([0-9a-f-]{36})"(?:,"part":(\d+))?')
# The last field but one of a post's line (``text`` comes earlier, JSON-escaped, so no quote in it ends here).
PUBLISHED_AT = re.compile(rb'"published_at":"([^"]+)","attempt":\d+\}$')
REMOVED = re.compile(rb'\{"removed":"([0-9a-f-]{36})"')


@dataclass
class _AccountFile:
    """One account's file as this process knows it: open, and read up to ``offset``."""

    fd: int
    offset: int = 0
    torn: bool = False
    published: dict[str, datetime | None] = field(default_factory=dict)  # share id -> published_at
    threads: threading.Lock = field(default_factory=threading.Lock)

    def catch_up(self) -> None:
        """Learn the shares other processes published since we last looked."""
        size = os.fstat(self.fd).st_size
        if size < self.offset:  # truncated by hand: start over
            self.offset, self.published = 0, {}
        if size == self.offset:
            return
        chunk = os.pread(self.fd, size - self.offset, self.offset)
        complete = chunk.rfind(b"\n") + 1
        for line in chunk[:complete].splitlines():
            # Only whole lines count: a torn one (a crash mid-write) is not a post.
            if not line.endswith(b"}"):
                continue
            if found := SHARE_ID.match(line):
                key = found.group(1).decode()
                self.published[f"{key}/{found.group(2).decode()}" if found.group(2) else key] = _published_at(line)
            elif removed := REMOVED.match(line):
                self.published.pop(removed.group(1).decode(), None)
        self.offset += complete
        self.torn = complete < len(chunk)

    def append(self, line: bytes) -> None:
        """Write one line, under the lock, once caught up."""
        # One write on an O_APPEND descriptor. No fsync: a line must survive the worker
        # being killed (the page cache keeps it), not a power cut.
        if self.torn:
            line = b"\n" + line  # end the torn line so ours stands alone
        os.write(self.fd, line + b"\n")
        self.offset = os.fstat(self.fd).st_size
        self.torn = False


def _published_at(line: bytes) -> datetime | None:
    found = PUBLISHED_AT.search(line)
    try:
        return datetime.fromisoformat(found.group(1).decode()) if found else None
    except ValueError:
        return None


def post_key(post: Post) -> str:
    """A post's id in the file: its share's, and ``<share>/<part>`` for a thread's part after the first."""
    return str(post.share_id) if post.part == 0 else f"{post.share_id}/{post.part}"


def _line(post: Post, published_at: datetime) -> dict[str, object]:
    """A post's line: ``share_id`` (and ``part``) first, ``published_at`` and ``attempt`` last
    (the file is read by those); a part names the post it answers (``in_reply_to``)."""
    line: dict[str, object] = {"share_id": str(post.share_id)}
    if post.part:
        line["part"] = post.part
    if post.reply_to is not None:
        line["in_reply_to"] = post.reply_to.parent.external_id
    line.update({"workspace_id": post.workspace_id, "account": post.account_name, "text": post.text})
    if post.content_warning is not None:
        line["content_warning"] = post.content_warning.model_dump(exclude_none=True)
    if post.language is not None:
        line["language"] = post.language
    if post.media:
        line["media"] = [{"file": media_file(item), "sha256": item.sha256, "mime": item.mime, "alt": item.alt}
                         for item in post.media]
    line.update({"scheduled_at": post.scheduled_at.isoformat(), "published_at": published_at.isoformat(),
                 "attempt": post.attempt})
    return line


MEDIA_FOLDER = "media"
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/gif": "gif",
               "video/mp4": "mp4"}


def media_file(item: Attachment) -> str:
    """Where an item's bytes are, relative to the workspace's folder: by their sha256."""
    return f"{MEDIA_FOLDER}/{item.sha256}.{_EXTENSIONS.get(item.mime, 'bin')}"


def _write_media(folder: Path, post: Post) -> None:
    """Each item's bytes beside the posts file, once by content: written whole under a temporary
    name, then renamed, so a file there is always complete (a crash leaves a stray temporary)."""
    for item in post.media:
        path = folder / media_file(item)
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        temporary.write_bytes(item.data)
        os.replace(temporary, path)


class ConsolePublisher:
    channel = CHANNEL

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._files: dict[str, _AccountFile] = {}
        self._uris: dict[str, str] = {}
        self._guard = threading.Lock()
        self._threads = ConsoleThreads(folder)

    # --- the thread under a post (console_replies.py) -----------------------------

    def read_thread(self, post: SharePost) -> list[ThreadPost]:
        return self._threads.read_thread(post)

    def answer(self, answer: Answer) -> Published:
        return self._threads.answer(answer)

    def find_answer(self, answer: Answer) -> Published | None:
        return self._threads.find_answer(answer)

    def publish(self, post: Post) -> Published:
        share = post_key(post)
        with self._locked(post.workspace_id, post.account_name) as account:
            if share not in account.published:
                if post.before_write is not None:
                    post.before_write()
                if post.media:  # the media before the line that names them: a line never names a missing file
                    _write_media(self._path(post.workspace_id, post.account_name).parent, post)
                published_at = datetime.now(UTC)
                account.append(orjson.dumps(_line(post, published_at)))
                account.published[share] = published_at
            created_at = account.published[share]
        return self._published(post, created_at)

    def find(self, post: Post) -> Published | None:
        share = post_key(post)
        with self._locked(post.workspace_id, post.account_name) as account:
            found = share in account.published
            created_at = account.published.get(share)
        return self._published(post, created_at) if found else None

    def can_find(self, post: Post) -> bool:
        """Always: the file holds every post."""
        return True

    def delete(self, post: Post, external_id: str) -> None:
        """Append a removal line for the post ``external_id`` (a share id); one not there is no error."""
        try:
            share = str(UUID(external_id))
        except ValueError:
            raise PermanentChannelError(f"console: {external_id!r} is not a console post's id") from None
        with self._locked(post.workspace_id, post.account_name) as account:
            if share in account.published:
                account.append(orjson.dumps({
                    "removed": share,
                    "account": post.account_name,
                    "removed_at": datetime.now(UTC).isoformat(),
                }))
                del account.published[share]

    def lines_for(self, workspace_id: str, account_name: str) -> list[dict[str, object]]:
        path = self._path(workspace_id, account_name)
        if not path.exists():
            return []
        lines = []
        for raw in path.read_bytes().splitlines():
            try:
                lines.append(orjson.loads(raw))
            except orjson.JSONDecodeError:
                continue  # a torn line
        return lines

    def _path(self, workspace_id: str, account_name: str) -> Path:
        account = file_name_of("account name", account_name)
        return self.folder / file_name_of("workspace", workspace_id) / f"{account}.jsonl"

    def _published(self, post: Post, created_at: datetime | None) -> Published:
        key = f"{post.workspace_id}/{post.account_name}"
        base = self._uris.get(key)
        if base is None:  # resolving a path costs several system calls: once per account
            base = self._uris[key] = self._path(post.workspace_id, post.account_name).resolve().as_uri()
        key = post_key(post)
        return Published(external_id=key, url=f"{base}#{key}", created_at=created_at)

    def _account(self, workspace_id: str, account_name: str) -> _AccountFile:
        key = f"{workspace_id}/{account_name}"
        with self._guard:
            account = self._files.get(key)
            if account is not None and os.fstat(account.fd).st_nlink == 0:
                os.close(account.fd)  # someone removed the file to start over
                account = None
            if account is None:
                path = self._path(workspace_id, account_name)
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
                account = self._files[key] = _AccountFile(fd)
            return account

    @contextmanager
    def _locked(self, workspace_id: str, account_name: str) -> Iterator[_AccountFile]:
        account = self._account(workspace_id, account_name)
        # flock excludes other processes; this process's threads share the descriptor,
        # so they take a thread lock first.
        with account.threads:
            fcntl.flock(account.fd, fcntl.LOCK_EX)
            try:
                account.catch_up()
                yield account
            finally:
                fcntl.flock(account.fd, fcntl.LOCK_UN)
