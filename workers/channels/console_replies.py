"""The console channel's threads: one replies file per account, next to its posts file
(a folder per workspace), ``<home>/console/<workspace>/<account>.replies.jsonl``, one JSON
line per post in a share's thread.

A person or a demo script writes replies with ``followthrough console reply SHARE_ID
"text" --author NAME`` (``write_reply``); answers published through the API are appended
by the worker as lines ``by_account`` carrying their idempotency key, under an exclusive
lock, only when no line holds that key yet: the file is its own record of what was
answered, as the posts file is of what was posted.

A line: ``{"reply_id", "share_id", "parent_id" (None: the post itself), "author", "text",
"created_at", "by_account", "key"}``.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import orjson

from scheduler.domain.share import ThreadPost
from workers.channels import Answer, PermanentChannelError, Published, SharePost

REPLIES_SUFFIX = ".replies"


def file_name_of(kind: str, name: str) -> str:
    """``name`` (a workspace or an account) as a console file or folder name; refused when it
    cannot be one, or when an account's posts file would be another account's replies file."""
    if not name or "/" in name or name.startswith(".") or "\x00" in name or (
            kind == "account name" and name.endswith(REPLIES_SUFFIX)):
        raise PermanentChannelError(f"{kind} {name!r} cannot name a console file or folder")
    return name


def replies_path(folder: Path, workspace_id: str, account_name: str) -> Path:
    """The account's replies file, next to its posts file in the workspace's folder."""
    return (folder / file_name_of("workspace", workspace_id)
            / f"{file_name_of('account name', account_name)}{REPLIES_SUFFIX}.jsonl")


def legacy_replies_path(folder: Path, account_name: str) -> Path:
    """Where an account's replies file was before it moved into the workspace's folder
    (shared by the workspaces' accounts of that name). Still read, matched by share, so
    that replies and answers written there before an upgrade are not lost."""
    return folder / f"{file_name_of('account name', account_name)}{REPLIES_SUFFIX}.jsonl"


def _thread_files(folder: Path, workspace_id: str, account_name: str) -> list[Path]:
    return [replies_path(folder, workspace_id, account_name), legacy_replies_path(folder, account_name)]


@contextmanager
def _locked(path: Path) -> Iterator[int]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # closing releases the lock


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = []
    for raw in path.read_bytes().splitlines():
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue  # a torn line (a writer killed mid-write) is not a post
        if isinstance(line, dict):
            lines.append(line)
    return lines


def _append(fd: int, line: dict[str, Any]) -> None:
    size = os.fstat(fd).st_size
    torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
    os.write(fd, (b"\n" if torn else b"") + orjson.dumps(line) + b"\n")


def write_reply(folder: Path, workspace_id: str, account_name: str, *, share_id: str, text: str, author: str,
                parent_id: str | None = None, by_account: bool = False, key: str | None = None,
                author_name: str | None = None) -> dict[str, Any]:
    """Append one post to a share's thread (a reply, or a reply to a reply); returns its line."""
    path = replies_path(folder, workspace_id, account_name)
    with _locked(path) as fd:
        if key is not None:
            existing = next((line for line in _lines(path) if line.get("key") == key), None)
            if existing is not None:
                return existing
        line = {"reply_id": uuid4().hex, "share_id": share_id, "parent_id": parent_id, "author": author,
                "text": text, "created_at": datetime.now(UTC).isoformat(), "by_account": by_account, "key": key}
        if author_name:
            line["author_name"] = author_name
        _append(fd, line)
    return line


class ConsoleThreads:
    """``ThreadReader`` for the console channel (the publisher delegates to it)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def read_thread(self, post: SharePost) -> list[ThreadPost]:
        posts = []
        for path in _thread_files(self.folder, post.workspace_id, post.account_name):
            base = path.resolve().as_uri()
            for line in _lines(path):
                if line.get("share_id") != str(post.share_id) or not isinstance(line.get("reply_id"), str):
                    continue
                try:
                    created_at = datetime.fromisoformat(str(line.get("created_at")))
                except ValueError:
                    continue  # a line written by hand without a time is no reply we can date
                if created_at.tzinfo is None:
                    created_at = created_at.replace(tzinfo=UTC)
                posts.append(ThreadPost(
                    reply_id=line["reply_id"], parent_id=line.get("parent_id"), author=str(line.get("author", "")),
                    text=str(line.get("text", "")), url=f"{base}#{line['reply_id']}", created_at=created_at,
                    by_account=bool(line.get("by_account")),
                    author_name=str(line["author_name"]) if line.get("author_name") else None,
                ))
        return sorted(posts, key=lambda p: p.created_at)

    def answer(self, answer: Answer) -> Published:
        path = replies_path(self.folder, answer.post.workspace_id, answer.post.account_name)
        if answer.before_write is not None:
            answer.before_write()
        post = answer.post
        line = write_reply(self.folder, post.workspace_id, post.account_name, share_id=str(post.share_id),
                           text=answer.text, author=post.account_name, parent_id=answer.reply_id,
                           by_account=True, key=answer.idempotency_key)
        return _published(path, line)

    def find_answer(self, answer: Answer) -> Published | None:
        for path in _thread_files(self.folder, answer.post.workspace_id, answer.post.account_name):
            line = next((x for x in _lines(path) if x.get("key") == answer.idempotency_key), None)
            if line is not None:
                return _published(path, line)
        return None


def _published(path: Path, line: dict[str, Any]) -> Published:
    return Published(external_id=str(line["reply_id"]), url=f"{path.resolve().as_uri()}#{line['reply_id']}",
                     created_at=datetime.fromisoformat(line["created_at"]))
