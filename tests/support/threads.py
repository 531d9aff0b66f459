"""Helpers for thread tests: plan a thread, and a publisher that dies right after one of a
thread's parts is out (the worker killed between a post and its record)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from scheduler.domain.media import MediaRequest
from scheduler.services.shares import PlanShare, ShareService
from tests.support.fake_channel import Crash
from tests.support.shares import PLAN, WS
from workers.channels import Post, Published, Publisher


def plan_thread(shares: ShareService, account_id: UUID, texts: list[str], *,
                part_media: Mapping[int, Sequence[MediaRequest]] | None = None, **kw: Any) -> UUID:
    """A thread of ``texts``, due now (``part_media``: a part's own media by its index; ``kw``:
    content_warning, language, media)."""
    parts = [{"text": t, "media": tuple((part_media or {}).get(i, ()))} for i, t in enumerate(texts)]
    command = PlanShare(account_id=account_id, text=None, scheduled_at=None, response_plan=PLAN, parts=parts, **kw)
    return shares.plan(WS, command, actor="test").share_id


@dataclass
class DiesAfterPart:
    """``inner``, except that the worker dies right after part ``part`` is posted, once."""

    inner: Publisher
    part: int
    died: bool = False

    @property
    def channel(self) -> str:
        return self.inner.channel

    def publish(self, post: Post) -> Published:
        published = self.inner.publish(post)
        if post.part == self.part and not self.died:
            self.died = True
            raise Crash
        return published

    def find(self, post: Post) -> Published | None:
        return self.inner.find(post)

    def can_find(self, post: Post) -> bool:
        return self.inner.can_find(post)

    def delete(self, post: Post, external_id: str) -> None:
        self.inner.delete(post, external_id)
