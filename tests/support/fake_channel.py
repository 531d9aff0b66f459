"""An in-memory channel for worker tests. By default it dedupes by idempotency key, as
well-behaved networks do; it can also behave like the worst real ones: ignore the key
(every publish is a new post), answer late after the post is made (a ``delay``, or a
``gate`` per share that a test opens), and hide the account's posts from look-ups. It
counts the posts it really made, and follows a script of outcomes."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from workers.channels import PermanentChannelError, Post, Published, TransientChannelError


class Crash(BaseException):
    """Stands for the worker process dying mid-call (not an ordinary failure)."""


@dataclass
class FakeChannel:
    channel: str = "console"
    script: list[str] = field(default_factory=list)
    posts: dict[str, Published] = field(default_factory=dict)  # by idempotency key: the first post
    made: list[tuple[UUID, Published]] = field(default_factory=list)  # every post really made
    publish_calls: list[UUID] = field(default_factory=list)
    find_calls: list[UUID] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    findable: bool = True  # False: like a server hiding the account's non-public posts
    honour_key: bool = True  # False: like a server ignoring Idempotency-Key
    delay: float = 0.0  # seconds between making the post and answering
    gates: dict[UUID, threading.Event] = field(default_factory=dict)  # answers wait for these
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    created_at: datetime | None = None  # the posts' own time as the network reports it (default: now)

    def publish(self, post: Post) -> Published:
        if post.before_write is not None:
            post.before_write()  # as the HTTP channels do: no lease, no request
        with self.lock:
            self.publish_calls.append(post.share_id)
            step = self.script.pop(0) if self.script else "ok"
        if step == "transient":
            raise TransientChannelError("503 Service Unavailable")
        if step.startswith("429:"):
            raise TransientChannelError("429 Too Many Requests", retry_after=timedelta(seconds=int(step[4:])))
        if step == "permanent":
            raise PermanentChannelError("422 text rejected by the network")
        if step == "crash_before":
            raise Crash
        published = self._make(post)
        self._answer_late(post.share_id)
        if step == "unknown":
            raise TransientChannelError("read timeout after sending", outcome_unknown=True)
        if step == "crash_after":
            raise Crash
        if step == "bug_after":  # a fault of ours reading the answer (not the network's, not a dying worker)
            raise KeyError("id")
        return published

    def _make(self, post: Post) -> Published:
        with self.lock:
            known = self.posts.get(post.idempotency_key)
            if known is not None and self.honour_key:
                return known
            made = Published(external_id=f"post-{len(self.made) + 1}", url=f"https://example/p/{len(self.made) + 1}",
                             created_at=self.created_at or datetime.now(UTC))
            self.made.append((post.share_id, made))
            self.posts.setdefault(post.idempotency_key, made)
            return made

    def _answer_late(self, share_id: UUID) -> None:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
            gate = self.gates.get(share_id)
            if gate is not None:
                gate.wait(30)
        finally:
            with self.lock:
                self.in_flight -= 1

    def find(self, post: Post) -> Published | None:
        self.find_calls.append(post.share_id)
        return self.posts.get(post.idempotency_key) if self.findable else None

    def can_find(self, post: Post) -> bool:
        return self.findable

    def delete(self, post: Post, external_id: str) -> None:
        with self.lock:
            self.deleted.append(external_id)

    def count_for(self, share_id: UUID) -> int:
        """Posts really made for the share (deleted ones included)."""
        return sum(1 for made_for, _ in self.made if made_for == share_id)
