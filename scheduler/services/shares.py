"""Share use cases behind the API: plan, read, reschedule, cancel, complete a task.

Each write goes through the one unit of work for share streams (``share_stream``):
the events first, then the schedule (and, for a plan, the idempotency record), then
commit. Results are domain values; the API renders them and chooses status codes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal
from uuid import UUID, uuid4

import orjson
import psycopg
import structlog
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from events.catalogue import ContentWarning, SharedMedia, SharePart, SharePlanned
from events.errors import ConcurrencyError
from events.records import AppendResult, NewEvent, RecordedEvent
from scheduler.domain import approval, content
from scheduler.domain import share as lifecycle
from scheduler.domain import slots as slot_times
from scheduler.domain.content import check_parts
from scheduler.domain.limits import InstanceLimits, no_instance_limit
from scheduler.domain.media import (
    InstanceMediaLimits,
    MediaRequest,
    check_media,
    media_limit_for,
    no_instance_media_limit,
)
from scheduler.domain.plans import StepInput, validate_plan
from scheduler.domain.post_urls import HandleResolver, post_id
from scheduler.domain.replies import cadence_from_config
from scheduler.domain.share import ShareState
from scheduler.errors import IdempotencyKeyReusedError, InvalidInputError, NotFoundError
from scheduler.services import accounts, calendars, looks, media, posts, slots
from scheduler.services.share_stream import Q as SQ
from scheduler.services.share_stream import ShareStreams, stamp

log = structlog.get_logger("scheduler.services.shares")

PAST_TOLERANCE = timedelta(minutes=5)
NEXT_SLOT = "next_slot"
NEXT_SLOT_FIELD = "scheduled_at"
WRITE_TRIES = 3
# The idempotency table keeps the status a repeat is answered with: a plan that
# went through is always "created".
CREATED = 201

_EVENT_LOG_NAMES = {
    "ShareSent": "share_marked_sent",
    "ShareCancelled": "share_cancelled",
    "ShareRescheduled": "share_rescheduled",
    "ShareApproved": "share_approved",
    "ShareRejected": "share_rejected",
    "ShareReviewRequested": "share_review_requested",
    "ResponseTasksCancelled": "response_tasks_cancelled",
    "ResponseTaskCompleted": "response_task_completed",
}
_RETRY_LOG_NAMES = {**_EVENT_LOG_NAMES, "ShareRescheduled": "share_retried",
                    "ResponseTasksRecorded": "response_tasks_revived"}

def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PlanShare:
    account_id: UUID
    # The post's text, or None for a thread (``parts``).
    text: str | None
    # None: now; "next_slot": the account's first free queue slot (``config.slots``).
    scheduled_at: datetime | Literal["next_slot"] | None
    response_plan: Sequence[StepInput] | None
    # A thread's parts ({text, content_warning?}), the warning of every part, the language (BCP 47).
    parts: Sequence[Mapping[str, Any]] | None = None
    content_warning: Mapping[str, Any] | None = None
    language: str | None = None
    # The library's items published with the post (checked by ``scheduler.domain.media``).
    media: Sequence[MediaRequest] = ()


def _content(command: PlanShare) -> tuple[tuple[SharePart, ...], ContentWarning | None]:
    """The command's posts in order, and the share's warning: ``text`` or ``parts``, never both."""
    warning = ContentWarning.model_validate(command.content_warning) if command.content_warning else None
    if command.parts is None:
        if command.text is None:
            raise InvalidInputError("text", "is required (or give parts for a thread)")
        return (SharePart(text=command.text),), warning
    if command.text is not None:
        raise InvalidInputError("parts", "give text or parts, not both")
    # A part's media are requests here (checked with the account, in ``_validate``).
    return tuple(SharePart.model_validate({k: v for k, v in part.items() if k != "media"})
                 for part in command.parts), warning


@dataclass(frozen=True, slots=True)
class PlanPost:
    """One post to several accounts: each account's share as it would be planned alone (the
    API folds the post's values and the account's variant into it), in the request's order."""

    shares: Sequence[PlanShare]


@dataclass(frozen=True, slots=True)
class Planned:
    """A plan's answer: the share as planned (its ``SharePlanned`` folded alone), when it was
    planned, the version written, and whether it repeats an earlier request's. A repeat
    gets the same values as the first answer: the caller renders both alike."""

    state: ShareState
    workspace_id: str
    created_at: datetime
    version: int
    replayed: bool

    @property
    def share_id(self) -> UUID:
        assert self.state.share_id is not None
        return self.state.share_id


@dataclass(frozen=True, slots=True)
class PostPlanned:
    """A post's answer: its shares as planned, in the request's order (see ``Planned``)."""

    post_id: UUID
    workspace_id: str
    created_at: datetime
    shares: tuple[Planned, ...]
    replayed: bool


def _request_hash(body: Any) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _remember_post(
    conn: psycopg.Connection[Any], results: Sequence[AppendResult], *, post_id: UUID, planned: Sequence[SharePlanned],
    created_at: datetime, workspace_id: str, key: str | None, request_hash: str,
) -> None:
    """In the post's transaction: each share's media uses and queue slot, the post's index
    of its shares, and what a repeat needs to give the first answer again."""
    for share in planned:
        media.record_uses(conn, workspace_id, share.share_id, [m.media_id for m in content.all_media(share)])
        if share.slot:
            slots.claim(conn, account_id=share.account_id, slot_at=share.scheduled_at, workspace_id=workspace_id,
                        share_id=share.share_id)
    posts.index(conn, post_id=post_id, workspace_id=workspace_id, share_ids=[p.share_id for p in planned])
    if key is not None:
        record = {"post_id": str(post_id), "versions": [r.version for r in results],
                  "created_at": created_at.isoformat()}
        conn.execute(
            "INSERT INTO idempotency_keys (workspace_id, key, request_hash, status_code, response)"
            " VALUES (%s, %s, %s, %s, %s)",
            (workspace_id, key, request_hash, CREATED, Jsonb(record)),
        )


def _remember(
    conn: psycopg.Connection[Any], result: AppendResult, *, planned: SharePlanned, created_at: datetime,
    versions: list[int], workspace_id: str, key: str | None, request_hash: str,
) -> None:
    """In the plan's transaction: the share's queue slot (taken with next_slot), and what a
    repeat needs to give the first answer again."""
    share_id = planned.share_id
    versions.append(result.version)
    media.record_uses(conn, workspace_id, share_id, [m.media_id for m in content.all_media(planned)])
    if planned.slot:
        slots.claim(conn, account_id=planned.account_id, slot_at=planned.scheduled_at, workspace_id=workspace_id,
                    share_id=share_id)
    if key is not None:
        record = {"share_id": str(share_id), "version": result.version, "created_at": created_at.isoformat()}
        conn.execute(
            "INSERT INTO idempotency_keys (workspace_id, key, request_hash, status_code, response)"
            " VALUES (%s, %s, %s, %s, %s)",
            (workspace_id, key, request_hash, CREATED, Jsonb(record)),
        )


def _recorded(conn: psycopg.Connection[Any], workspace_id: str, key: str, request_hash: str) -> dict[str, Any] | None:
    """What the first request with this key stored for its repeats; a different request
    under the same key is refused."""
    row = conn.execute(
        "SELECT request_hash, response FROM idempotency_keys WHERE workspace_id = %s AND key = %s",
        (workspace_id, key),
    ).fetchone()
    if row is None:
        return None
    if row[0] != request_hash:
        raise IdempotencyKeyReusedError(key)
    return dict(row[1])


def _check_distinct(parts: Sequence[PlanShare]) -> None:
    """A post has one share per account."""
    first: dict[UUID, int] = {}
    for i, part in enumerate(parts):
        if part.account_id in first:
            raise InvalidInputError(f"accounts.{i}.account_id",
                                    f"names the same account as accounts.{first[part.account_id]}; "
                                    "a post has one share per account")
        first[part.account_id] = i


@dataclass
class ShareService:
    pool: ConnectionPool[Any]
    streams: ShareStreams
    clock: Callable[[], datetime] = utc_now
    # What an account's server says of its text limit (the channel asks it; cached there).
    instance_limit: InstanceLimits = no_instance_limit
    # What an account's server says of its media limits (attachments, alt length).
    instance_media: InstanceMediaLimits = no_instance_media_limit
    # How far ahead a share may be scheduled (FOLLOWTHROUGH_API_SCHEDULE_HORIZON_DAYS).
    horizon: timedelta = timedelta(days=365)
    # A Bluesky handle to its DID, as the account's service says (a post's url may name
    # its author by handle); None: such a url is refused.
    resolve_handle: HandleResolver | None = None

    def _check_when(self, scheduled_at: datetime, now: datetime) -> None:
        if scheduled_at.tzinfo is None:
            raise InvalidInputError("scheduled_at", "must carry a time-zone offset (RFC 3339)")
        if scheduled_at < now - PAST_TOLERANCE:
            raise InvalidInputError("scheduled_at", "is more than 5 minutes in the past")
        if scheduled_at > now + self.horizon:
            raise InvalidInputError("scheduled_at", f"is more than {self.horizon.days} days ahead")

    # --- reading ------------------------------------------------------------------

    def load(self, workspace_id: str, share_id: UUID) -> tuple[ShareState, list[RecordedEvent]]:
        """The share's state (its thread with every look counted, recorded or not) and history."""
        state, history = self.streams.load(share_id)
        if not history or history[0].workspace_id != workspace_id:
            raise NotFoundError("share", str(share_id))
        if state.sent is not None:
            with self.pool.connection() as conn:
                state = lifecycle.looks_counted(state, looks.ledger(conn, share_id))
        return state, history

    # --- planning -----------------------------------------------------------------

    def plan(
        self,
        workspace_id: str,
        command: PlanShare,
        *,
        actor: str,
        idempotency_key: str | None = None,
        request_body: Any = None,
    ) -> Planned:
        """Validate and plan a share.

        With an idempotency key, a repeat of the same request returns the first
        answer; the same key with a different body is refused.

        With ``scheduled_at="next_slot"`` the share takes the account's first free queue
        slot: planners of one account take turns (``slots.locked``), each reading the
        claims the ones before it committed, and the claim is written in the plan's
        transaction (its primary key refuses a second share on a slot whatever happens).
        """
        request_hash = _request_hash(request_body)
        now = self.clock()
        for _ in range(WRITE_TRIES):
            with self.pool.connection() as conn, self._turns(conn, [command]):
                if idempotency_key is not None:
                    replay = self._replay(conn, workspace_id, idempotency_key, request_hash)
                    if replay is not None:
                        return replay
                planned = self._validate(conn, workspace_id, command, now)
                versions: list[int] = []
                remember = partial(_remember, planned=planned, created_at=now, versions=versions,
                                   workspace_id=workspace_id, key=idempotency_key, request_hash=request_hash)
                new = stamp([NewEvent(event=planned, event_id=lifecycle.event_id(planned.share_id, "planned"))],
                            workspace_id=workspace_id, actor=actor, share_id=planned.share_id)
                try:
                    self.streams.commit(conn, share_id=planned.share_id, workspace_id=workspace_id, events=new,
                                        expected_version=0, also=remember)
                except pg_errors.UniqueViolation:
                    # A concurrent request with the same key won (replay its answer), or, past
                    # the lock, another share took the slot (pick again).
                    continue
            log.info(
                "share_planned",
                share_id=str(planned.share_id),
                workspace_id=workspace_id,
                account=planned.account_name,
                channel=planned.channel,
                scheduled_at=planned.scheduled_at.isoformat(),
                slot=planned.slot,
                tasks=len(planned.response_plan),
            )
            return Planned(lifecycle.fold([planned]), workspace_id, now, versions[0], replayed=False)
        raise ConcurrencyError("idempotency", None, 0)

    def plan_post(
        self,
        workspace_id: str,
        command: PlanPost,
        *,
        actor: str,
        idempotency_key: str | None = None,
        request_body: Any = None,
    ) -> PostPlanned:
        """Plan one share per account of a post, each validated as ``plan`` validates a
        share (a refusal names ``accounts.<i>.<field>``), all in one transaction: all or
        none. One idempotency key for the whole post; a repeat gets the first answer."""
        # Keyed apart from a share's body: one key names one request, a share or a post.
        request_hash = _request_hash({"post": request_body})
        _check_distinct(command.shares)
        now = self.clock()
        for _ in range(WRITE_TRIES):
            with self.pool.connection() as conn, self._turns(conn, command.shares):
                if idempotency_key is not None:
                    replay = self._replay_post(conn, workspace_id, idempotency_key, request_hash)
                    if replay is not None:
                        return replay
                post_id = uuid4()
                planned = [self._validate_part(conn, workspace_id, part, now, post_id=post_id, index=i)
                           for i, part in enumerate(command.shares)]
                remember = partial(_remember_post, post_id=post_id, planned=planned, created_at=now,
                                   workspace_id=workspace_id, key=idempotency_key, request_hash=request_hash)
                shares = [(p.share_id, stamp([NewEvent(event=p, event_id=lifecycle.event_id(p.share_id, "planned"))],
                                             workspace_id=workspace_id, actor=actor, share_id=p.share_id))
                          for p in planned]
                try:
                    results = self.streams.commit_new(conn, workspace_id=workspace_id, shares=shares, also=remember)
                except pg_errors.UniqueViolation:
                    continue  # as in ``plan``: a concurrent repeat won, or a slot went meanwhile
            log.info("post_planned", post_id=str(post_id), workspace_id=workspace_id,
                     shares=[str(p.share_id) for p in planned], accounts=[p.account_name for p in planned])
            return PostPlanned(post_id, workspace_id, now, tuple(
                Planned(lifecycle.fold([p]), workspace_id, now, r.version, replayed=False)
                for p, r in zip(planned, results, strict=True)), replayed=False)
        raise ConcurrencyError("idempotency", None, 0)

    def load_post(self, workspace_id: str, post_id: UUID) -> list[tuple[ShareState, list[RecordedEvent]]]:
        """The post's shares now (each as ``load`` reads it), in the request's order."""
        with self.pool.connection() as conn:
            share_ids = posts.shares_of(conn, workspace_id, post_id)
        if not share_ids:
            raise NotFoundError("post", str(post_id))
        return [self.load(workspace_id, share_id) for share_id in share_ids]

    def _validate_part(self, conn: psycopg.Connection[Any], workspace_id: str, part: PlanShare, now: datetime, *,
                       post_id: UUID, index: int) -> SharePlanned:
        try:
            return self._validate(conn, workspace_id, part, now, post_id=post_id)
        except InvalidInputError as exc:
            raise InvalidInputError(f"accounts.{index}.{exc.field}", exc.message) from None

    def _turns(self, conn: psycopg.Connection[Any], commands: Sequence[PlanShare]) -> ExitStack:
        """next_slot plans' turns on their accounts, taken in one order (so two posts never
        wait on each other); nothing to wait for otherwise."""
        stack = ExitStack()
        for account_id in sorted({c.account_id for c in commands if c.scheduled_at == NEXT_SLOT}):
            stack.enter_context(slots.locked(conn, account_id))
        return stack

    def _next_slot(self, conn: psycopg.Connection[Any], account: accounts.Account, now: datetime) -> datetime:
        """The account's first free queue slot from now on, within the horizon."""
        week = slot_times.from_config(account.config)
        if week is None:
            raise InvalidInputError(
                NEXT_SLOT_FIELD, f"next_slot needs queue slots on account {account.name!r}: set its config.slots "
                '({"time_zone": "Europe/Berlin", "week": {"mon": ["09:00", ...]}}) or give an RFC 3339 time')
        end = now + self.horizon
        held = slots.taken(conn, account.id, now, end)
        for at in slot_times.between(week, now, end):
            if at not in held:
                return at
        raise InvalidInputError(NEXT_SLOT_FIELD, f"account {account.name!r} has no free slot in the next "
                                                 f"{self.horizon.days} days: add slots or give an RFC 3339 time")

    def _replay(
        self, conn: psycopg.Connection[Any], workspace_id: str, key: str, request_hash: str
    ) -> Planned | None:
        """The first answer to this key again: its share's ``SharePlanned`` (never changed
        by what happened since) and the time and version the first answer gave."""
        record = _recorded(conn, workspace_id, key, request_hash)
        if record is None:
            return None
        # Keys stored before this format hold the whole answer: its "id" is the share's.
        share_id = UUID(str(record.get("share_id") or record["id"]))
        _, history = self.streams.load(share_id, conn=conn)
        return Planned(lifecycle.fold([history[0].event]), workspace_id, datetime.fromisoformat(record["created_at"]),
                       int(record["version"]), replayed=True)

    def _replay_post(
        self, conn: psycopg.Connection[Any], workspace_id: str, key: str, request_hash: str
    ) -> PostPlanned | None:
        """The first answer to this post's key again: each share as planned (``_replay``)."""
        record = _recorded(conn, workspace_id, key, request_hash)
        if record is None:
            return None
        post_id = UUID(str(record["post_id"]))
        created_at = datetime.fromisoformat(record["created_at"])
        shares = []
        for share_id, version in zip(posts.shares_of(conn, workspace_id, post_id), record["versions"], strict=True):
            _, history = self.streams.load(share_id, conn=conn)
            shares.append(Planned(lifecycle.fold([history[0].event]), workspace_id, created_at, int(version),
                                  replayed=True))
        return PostPlanned(post_id, workspace_id, created_at, tuple(shares), replayed=True)

    def _validate(
        self, conn: psycopg.Connection[Any], workspace_id: str, command: PlanShare, now: datetime,
        post_id: UUID | None = None,
    ) -> SharePlanned:
        account = accounts.get(conn, workspace_id, command.account_id)
        parts, warning = _content(command)
        check_parts(account.channel, account.config, parts, warning,
                    self.instance_limit(account.channel, account.config))
        attached = self._media(conn, workspace_id, account, command.media)
        parts = self._parts_media(conn, workspace_id, account, command, parts)
        if len(parts) == 1 and parts[0].media:
            # A one-part thread is a single post: its part's media are the share's.
            attached, parts = parts[0].media, (parts[0].model_copy(update={"media": ()}),)
        slot = command.scheduled_at == NEXT_SLOT
        if isinstance(command.scheduled_at, datetime):
            scheduled_at = command.scheduled_at
        else:
            scheduled_at = self._next_slot(conn, account, now) if slot else now
        self._check_when(scheduled_at, now)
        field = "response_plan"
        if command.response_plan:
            plan = validate_plan(command.response_plan)
        elif account.default_response_plan:
            plan, field = account.default_response_plan, "default_response_plan"
        else:
            plan = validate_plan(None)
        if any(step.clock == "business" for step in plan):
            calendars.check_plan_clocks(calendars.load(self.streams.store, workspace_id, conn=conn), plan, field=field,
                                        now=now)
        return SharePlanned(
            share_id=uuid4(),
            account_id=account.id,
            account_name=account.name,
            channel=account.channel,
            text=parts[0].text,
            parts=parts if len(parts) > 1 else (),
            # A one-part thread is a single post: its own warning is the share's.
            content_warning=warning if len(parts) > 1 else parts[0].content_warning or warning,
            language=command.language,
            scheduled_at=scheduled_at.astimezone(UTC),
            response_plan=plan,
            late_policy=account.late_policy,
            max_lateness_seconds=account.max_lateness_seconds,
            reply_cadence=cadence_from_config(account.config),
            slot=slot,
            media=attached,
            post_id=post_id,
            approval_required=approval.from_config(account.config).required,
        )

    def _media(self, conn: psycopg.Connection[Any], workspace_id: str, account: accounts.Account,
               requested: Sequence[MediaRequest], field: str = "media") -> tuple[SharedMedia, ...]:
        """The attachments as published; a thread's part calls this with its own field."""
        if not requested:
            return ()
        library = media.library_items(conn, workspace_id, [m.media_id for m in requested])
        limit = media_limit_for(account.channel, self.instance_media(account.channel, account.config))
        return check_media(account.channel, requested, library, limit, field=field)

    def _parts_media(self, conn: psycopg.Connection[Any], workspace_id: str, account: accounts.Account,
                     command: PlanShare, parts: tuple[SharePart, ...]) -> tuple[SharePart, ...]:
        """Each part with its own media, checked per part (``parts.1.media.0.alt``). The share's
        ``media`` are the first part's: given in both places is a mistake, never a merge."""
        if command.parts is None:
            return parts
        requested: list[Sequence[MediaRequest]] = [part.get("media") or () for part in command.parts]
        if command.media and requested[0]:
            raise InvalidInputError("media", "are the first part's media: give them here or in parts.0.media, "
                                    "not both")
        return tuple(part.model_copy(update={"media": self._media(conn, workspace_id, account, wanted,
                                                                   field=f"parts.{i}.media")})
                     if wanted else part for i, (part, wanted) in enumerate(zip(parts, requested, strict=True)))

    # --- changing -----------------------------------------------------------------

    def reschedule(
        self, workspace_id: str, share_id: UUID, scheduled_at: datetime, *, actor: str
    ) -> tuple[ShareState, list[RecordedEvent]]:
        self._check_when(scheduled_at, self.clock())
        return self._change(
            workspace_id, share_id, actor, lambda s: lifecycle.reschedule(s, scheduled_at=scheduled_at.astimezone(UTC))
        )

    def retry(
        self, workspace_id: str, share_id: UUID, scheduled_at: datetime | None, *, actor: str
    ) -> tuple[ShareState, list[RecordedEvent]]:
        """A failed or abandoned share planned again, for ``scheduled_at`` (default now)."""
        now = self.clock()
        when = now if scheduled_at is None else scheduled_at
        self._check_when(when, now)
        return self._change(workspace_id, share_id, actor,
                            lambda s: lifecycle.retry(s, scheduled_at=when.astimezone(UTC)), names=_RETRY_LOG_NAMES)

    def cancel(
        self, workspace_id: str, share_id: UUID, *, reason: str, actor: str
    ) -> tuple[ShareState, list[RecordedEvent]]:
        return self._change(workspace_id, share_id, actor, lambda s: lifecycle.cancel(s, reason=reason))

    def approve(self, workspace_id: str, share_id: UUID, *, actor: str) -> tuple[ShareState, list[RecordedEvent]]:
        """``actor`` approves the share: one of its account's approvers, not its author
        (unless the account allows self-approval); else ``ForbiddenError`` saying why."""
        now = self.clock()
        rules, author = self._review_rules(workspace_id, share_id)
        return self._change(workspace_id, share_id, actor,
                            lambda s: lifecycle.approve(s, rules, by=actor, author=author, now=now))

    def reject(
        self, workspace_id: str, share_id: UUID, *, reason: str, actor: str
    ) -> tuple[ShareState, list[RecordedEvent]]:
        """``actor`` rejects the share, saying why: it is not published until a change sends
        it back to review and an approver approves it."""
        now = self.clock()
        rules, author = self._review_rules(workspace_id, share_id)
        return self._change(workspace_id, share_id, actor,
                            lambda s: lifecycle.reject(s, rules, by=actor, author=author, reason=reason, now=now))

    def _review_rules(self, workspace_id: str, share_id: UUID) -> tuple[approval.Approval, str | None]:
        """Who may review the share (its account's setting as it stands now) and its author
        (the actor who planned it)."""
        state, history = self.load(workspace_id, share_id)
        assert state.planned is not None
        with self.pool.connection() as conn:
            config = accounts.config_of(conn, state.planned.account_id)
        author = history[0].metadata.get("actor")
        return approval.from_config(config), None if author is None else str(author)

    def complete_task(
        self, workspace_id: str, task_id: UUID, *, by: str, note: str, actor: str | None = None
    ) -> tuple[ShareState, list[RecordedEvent]]:
        """``by``: who did the task (recorded in the event); ``actor``: who records it (the
        event's actor; ``by`` when not given)."""
        share_id = self._share_of_task(workspace_id, task_id)
        now = self.clock()
        return self._change(
            workspace_id, share_id, actor or by,
            lambda s: lifecycle.complete_task(s, task_id=task_id, now=now, by=by, note=note),
        )

    def mark_sent(
        self, workspace_id: str, share_id: UUID, *, url: str, external_id: str | None, sent_at: datetime | None,
        actor: str,
    ) -> tuple[ShareState, list[RecordedEvent]]:
        """A person found the post (a share held for an unknown outcome): record it sent.
        Without ``external_id``, the post's id is read from ``url`` for the share's channel
        (refused, naming ``url``, when the url does not say it)."""
        now = self.clock()
        if sent_at is not None and sent_at > now + PAST_TOLERANCE:
            raise InvalidInputError("sent_at", "is in the future")
        state, _ = self.load(workspace_id, share_id)
        if external_id is None:
            external_id = self._post_id(state, url)
        hours = calendars.for_share(self.streams.store, None, workspace_id, state)
        return self._change(workspace_id, share_id, actor, lambda s: lifecycle.mark_sent(
            s, url=url, external_id=external_id, sent_at=None if sent_at is None else sent_at.astimezone(UTC),
            now=now, calendars=hours))

    def _post_id(self, state: ShareState, url: str) -> str | None:
        """The post's id that ``url`` names on the share's channel; None when marking the
        share records nothing (already sent with that url). A share that cannot be marked
        is refused first, whatever its url."""
        if not lifecycle.needs_marking(state, url) or state.planned is None:
            return None
        with self.pool.connection() as conn:
            config = accounts.config_of(conn, state.planned.account_id)
        return post_id(state.planned.channel, url, config, self.resolve_handle)

    def _change(
        self,
        workspace_id: str,
        share_id: UUID,
        actor: str,
        decide: Callable[[ShareState], Sequence[NewEvent]],
        names: Mapping[str, str] = _EVENT_LOG_NAMES,
    ) -> tuple[ShareState, list[RecordedEvent]]:
        state, _ = self.load(workspace_id, share_id)  # 404 for another workspace's share
        with self.pool.connection() as conn:
            _, written = self.streams.change(conn, share_id, decide, workspace_id=workspace_id, actor=actor,
                                             state=state)
        for e in written:
            log.info(
                names.get(e.event.type_name, e.event.type_name),
                share_id=str(share_id),
                workspace_id=workspace_id,
                actor=actor,
            )
        return self.load(workspace_id, share_id)

    def _share_of_task(self, workspace_id: str, task_id: UUID) -> UUID:
        """The task's share, from the index written with the share's plan (``share_tasks``)."""
        with self.pool.connection() as conn:
            row = conn.execute(SQ["share_of_task"], {"task_id": task_id, "workspace_id": workspace_id}).fetchone()
        if row is None:
            raise NotFoundError("response task", str(task_id))
        return UUID(str(row[0]))
