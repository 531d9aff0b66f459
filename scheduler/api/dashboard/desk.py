"""The replies page (``/dashboard/replies``): the replies of the workspace for the person who
answers them, with the thread above each, and the forms that answer or dismiss one through
the reply service (the same exactly-once path as ``POST /v1/replies/{id}/answer``)."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit
from uuid import UUID

from markupsafe import Markup, escape

from events.projections import replies as inbox
from scheduler.api.deps import Services
from scheduler.domain.limits import TextLimit, limit_for
from scheduler.domain.saved_replies import fill
from scheduler.services import accounts, saved_replies

STATES = ("unanswered", "answered", "dismissed")
PAGE_SIZE = 50
MAX_THREAD = 50
# a link ends before whitespace, a quote or an angle bracket, and without its closing punctuation
_LINK = re.compile(r"https?://[^\s<>\"']+?(?=[.,;:!?)\]'\"]*(?:[\s<>\"']|$))")


@dataclass(frozen=True, slots=True)
class Filters:
    """What the page's GET form asks for; ``errors`` names each value it could not use."""

    state: str | None = None
    owner: str | None = None
    account_id: UUID | None = None
    share_id: UUID | None = None
    page: int = 0
    errors: tuple[str, ...] = ()
    assignee: str | None = None
    mine: bool = False

    def query(self, **changes: Any) -> str:
        params = {"state": self.state, "owner": self.owner, "assignee": self.assignee,
                  "mine": "true" if self.mine else None, "account_id": self.account_id,
                  "share_id": self.share_id, "page": self.page or None} | changes
        return urlencode({k: str(v) for k, v in params.items() if v not in (None, "", 0)})


def parse(params: Mapping[str, str], me: str | None = None) -> Filters:
    """The filters asked for; ``me``: the signed-in token's owner ("mine" is theirs)."""
    errors: list[str] = []
    state = params.get("state") or None
    if state is not None and state not in STATES:
        errors.append(f"state: one of {', '.join(STATES)} (showing every state)")
        state = None
    ids: dict[str, UUID | None] = {}
    for name in ("account_id", "share_id"):
        value = (params.get(name) or "").strip()
        try:
            ids[name] = UUID(value) if value else None
        except ValueError:
            errors.append(f"{name}: {value!r} is not an id (showing every {name.removesuffix('_id')})")
            ids[name] = None
    try:
        page = max(0, int(params.get("page") or 0))
    except ValueError:
        errors.append("page: a number from 0")
        page = 0
    owner = (params.get("owner") or "").strip() or None
    assignee = (params.get("assignee") or "").strip() or None
    mine = (params.get("mine") or "").lower() in ("true", "1", "on", "yes")
    if mine and me is None:
        errors.append("mine: this session's token has no owner (`followthrough token create --owner NAME`); "
                      "showing everyone's")
        mine = False
    if mine and assignee not in (None, me):
        errors.append(f"mine: you are {me}; showing yours, not {assignee}'s")
    return Filters(state, owner, ids["account_id"], ids["share_id"], page, tuple(errors),
                   me if mine else assignee, mine)


def linkify(text: str | None) -> Markup:
    """Plain text with its http(s) links made clickable; everything else escaped."""
    if not text:
        return Markup("")
    if "http" not in text:  # most text has no link: one escape (the page links up to 150 texts)
        return escape(text)
    out: list[str] = []
    last = 0
    for found in _LINK.finditer(text):
        url = escape(found.group(0))
        out.append(escape(text[last:found.start()]))
        # plain str joined once (Markup.format and Markup.join cost twice as much a text)
        out.append(f'<a href="{url}" rel="nofollow noopener noreferrer">{url}</a>')
        last = found.end()
    out.append(escape(text[last:]))
    return Markup("".join(out))  # noqa: S704 -- every piece is escaped above: the text's and the url



def author_link(channel: str, author: str, url: str | None) -> str | None:
    """Where the author's profile is: Bluesky's by handle; a Mastodon account's from its
    post's address (``https://host/@name/id``); none on the console."""
    if channel == "bluesky" and author and not author.startswith("did:"):
        return f"https://bsky.app/profile/{author}"
    if channel == "mastodon" and url:
        parts = urlsplit(url)
        segments = parts.path.strip("/").split("/")
        if parts.scheme in ("https", "http") and segments and segments[0].startswith("@"):
            return f"{parts.scheme}://{parts.netloc}/{segments[0]}"
    return None


def handle(channel: str, author: str) -> str:
    return author if author.startswith("@") or channel == "console" else f"@{author}"


def _thread(row: dict[str, Any], above: dict[tuple[UUID, str], dict[str, Any]]) -> list[dict[str, Any]]:
    """The replies above one, from the top (the reply to the share's post) down to its parent."""
    chain: list[dict[str, Any]] = []
    parent = row["parent_id"]
    while parent is not None and len(chain) < MAX_THREAD:
        found = above.get((row["share_id"], parent))
        if found is None:  # not collected (yet): the thread stops where the read model does
            chain.append({"missing": True, "network_reply_id": parent})
            break
        chain.append(found)
        parent = found["parent_id"]
    return list(reversed(chain))


def left(limit: TextLimit, text: str) -> int:
    """What is left for an answer on its network, counted as the network counts."""
    return limit.maximum - limit.measure(text)


def page(svc: Services, workspace_id: str, chosen: Filters, drafts: Mapping[UUID, str] | None = None
         ) -> dict[str, Any]:
    with svc.pool.connection() as conn:
        # The page's reads sent together and answered in one round trip (a pipeline), then
        # the threads above its replies: two round trips, not six. Fewer waits matter
        # more than their milliseconds: each is a moment the request must win the GIL back
        # from a page being rendered on the process's other threads.
        with conn.pipeline():
            read_rows = inbox.desk_later(
                conn, workspace_id, state=chosen.state, account_id=chosen.account_id, owner=chosen.owner,
                assignee=chosen.assignee, share_id=chosen.share_id, limit=PAGE_SIZE + 1,
                offset=chosen.page * PAGE_SIZE, at_risk=svc.config.sla_at_risk,
                reply_sla_seconds=svc.config.reply_sla_seconds)
            read_people = inbox.owners_and_people_later(conn, workspace_id)
            read_known = accounts.list_all_later(conn, workspace_id)
            read_ready = saved_replies.list_all_later(conn, workspace_id)
            rows, (owners, people), known, ready = read_rows(), read_people(), read_known(), read_ready()
        more, rows = len(rows) > PAGE_SIZE, rows[:PAGE_SIZE]
        above = inbox.thread_above(conn, workspace_id,
                                   [(r["share_id"], r["parent_id"]) for r in rows if r["parent_id"]])
    limits = {a.id: limit_for(a.channel, a.config, svc.replies.instance_limit(a.channel, a.config)) for a in known}
    drafts = drafts or {}
    for row in rows:
        row["thread"] = _thread(row, above)
        row["author_url"] = author_link(row["channel"], row["author"], row["url"])
        row["handle"] = handle(row["channel"], row["author"])
        limit = limits.get(row["account_id"]) or limit_for(row["channel"], {})
        row["limit"] = limit
        row["draft"] = drafts.get(row["id"], "")
        row["left"] = left(limit, row["draft"])
        # each saved reply filled for this reply: the picker's script puts it in the box to edit
        values = saved_replies.values_for(row["author"], row["author_name"], row["account_name"])
        row["saved"] = [(s.id, s.name, fill(s.text, values)) for s in ready]
    return {"replies": rows, "more": more, "owners": owners, "people": people, "accounts": known,
            "filters": chosen, "states": STATES}


def wait_for_reply(svc: Services, workspace_id: str, reply_id: UUID, *, dismissed: bool = False,
                    assignee: str | None = None, timeout: float = 3.0) -> bool:
    """Wait (briefly) for the projector to show what the form did, so the page redirected to shows it."""
    deadline = time.monotonic() + timeout
    while True:
        with svc.pool.connection() as conn:
            found = inbox.reply_answer(conn, workspace_id, reply_id)
        if found is not None:
            if assignee is not None:
                if found[2] == assignee:
                    return True
            elif found[0] == "dismissed" if dismissed else found[1] is not None:
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
