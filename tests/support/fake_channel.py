"""An in-memory channel for worker tests: it dedupes by idempotency key, as real
networks do, counts real posts, and follows a script of outcomes."""

from __future__ import annotations

import threading
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
    posts: dict[str, Published] = field(default_factory=dict)
    publish_calls: list[UUID] = field(default_factory=list)
    find_calls: list[UUID] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    findable: bool = True  # False: like a server hiding the account's non-public posts
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, post: Post) -> Published:
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
        with self.lock:
            if post.before_write is not None:
                post.before_write()
            published = self.posts.setdefault(
                post.idempotency_key,
                Published(external_id=f"post-{len(self.posts) + 1}", url="https://example/p",
                          created_at=datetime.now(UTC)),
            )
        if step == "unknown":
            raise TransientChannelError("read timeout after sending", outcome_unknown=True)
        if step == "crash_after":
            raise Crash
        return published

    def find(self, post: Post) -> Published | None:
        self.find_calls.append(post.share_id)
        return self.posts.get(post.idempotency_key) if self.findable else None

    def can_find(self, post: Post) -> bool:
        return self.findable

    def delete(self, post: Post, external_id: str) -> None:
        with self.lock:
            self.deleted.append(external_id)

    def count_for(self, share_id: UUID) -> int:
        return sum(1 for key in self.posts if key.endswith(str(share_id)))
