"""What each dashboard page shows, read through the read side and the services."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from events import monitoring
from events.projections import planner as planner_query
from events.projections import replies, reports, timeline
from scheduler.api.dashboard import chart
from scheduler.api.dashboard.period import Period
from scheduler.api.deps import Services
from scheduler.api.views import event_view, share_view
from scheduler.domain import approval
from scheduler.domain.planner import content_mark
from scheduler.domain.share import ShareState
from scheduler.errors import ForbiddenError, NotFoundError
from scheduler.services import accounts
from scheduler.services.calendars import calendar_at_send

BREAKDOWNS: tuple[tuple[reports.GroupBy, str], ...] = (
    ("account", "Account"), ("owner", "Owner"), ("channel", "Channel"),
)
SHARE_STATUSES = ("in_review", "review_overdue", "rejected", "planned", "sending", "sent", "failed", "held",
                  "abandoned", "cancelled")
SOON = timedelta(hours=24)
REVIEW_LIMIT = 500
THREAD_ON_SHARE = 20


def overview(svc: Services, workspace_id: str, period: Period, today: date) -> dict[str, Any]:
    start, end = period.start, period.end
    with svc.pool.connection() as conn:
        tables = {
            by: reports.followthrough(conn, workspace_id, by=by, start=start, end=end) for by, _ in BREAKDOWNS
        }
        days = reports.followthrough(conn, workspace_id, by=period.by, start=start, end=end)
        total = reports.followthrough(conn, workspace_id, by="workspace", start=start, end=end)
        integrity = reports.sent_without_tasks(conn, workspace_id)
    keys = sorted(date.fromisoformat(str(r["key"])) for r in days)
    first = period.first or (keys[0] if keys else today)
    last = period.last or (keys[-1] if keys else today)
    series = chart.points(days, first, last, period.by)
    return {
        "breakdowns": [(by, title, tables[by]) for by, title in BREAKDOWNS],
        "engagement": [row for row in days if any(row.get(k) for k in reports.NO_ENGAGEMENT)],
        "total": total[0] if total else None,
        "bars": chart.bars(series),
        "gridlines": chart.gridlines(),
        "chart": {"width": chart.WIDTH, "height": chart.HEIGHT, "left": chart.LEFT, "right": chart.RIGHT,
                  "bottom": chart.HEIGHT - chart.BOTTOM},
        "series": series,
        "integrity": integrity,
    }


def inbox(svc: Services, workspace_id: str, now: datetime) -> dict[str, Any]:
    with svc.pool.connection() as conn:
        tasks = reports.inbox(conn, workspace_id, states=["overdue", "open"], owner=None, limit=1000,
                              at_risk=svc.config.sla_at_risk)
    owners: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: {"overdue": [], "soon": [], "later": []})
    for task in tasks:
        due = datetime.fromisoformat(task["due_at"]) if task["due_at"] else None
        task["due"] = due
        if task["status"] == "overdue":
            owners[task["owner"]]["overdue"].append(task)
        elif due is not None and due - now <= SOON:
            owners[task["owner"]]["soon"].append(task)
        else:
            owners[task["owner"]]["later"].append(task)
    ordered = sorted(owners.items(), key=lambda kv: (-len(kv[1]["overdue"]), kv[0]))
    return {"owners": ordered, "count": len(tasks)}


def shares(svc: Services, workspace_id: str, period: Period, status: str | None) -> dict[str, Any]:
    statuses = [status] if status in SHARE_STATUSES else None
    with svc.pool.connection() as conn:
        rows = timeline.timeline(conn, workspace_id, statuses=statuses, start=period.start, end=period.end,
                                 limit=500)
        health = timeline.workspace_health(conn, workspace_id)
        marks = planner_query.content_marks(conn, workspace_id, [r["share_id"] for r in rows])
    for row in rows:
        row["mark"] = content_mark(*marks.get(row["share_id"], (0, 0, 0)))
        if row["status"] == "held":
            state, history = svc.shares.load(workspace_id, row["share_id"])
            row["held"] = share_view(state, history, svc.shares.clock())["held"]
    days: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        days[row["scheduled_at"].date()].append(row)
    return {"days": sorted(days.items(), reverse=True), "count": len(rows), "counts": health.shares_by_status,
            "status": status if statuses else None, "statuses": SHARE_STATUSES}


def share(svc: Services, workspace_id: str, share_id: UUID) -> dict[str, Any]:
    """The share, and its history with the looks at its thread as one summary line (every
    look, recorded or not: ``replies``'s looks, last and next) instead of a row per look."""
    state, history = svc.shares.load(workspace_id, share_id)
    with svc.pool.connection() as conn:
        thread = replies.desk(conn, workspace_id, state=None, account_id=None, owner=None, share_id=share_id,
                              limit=THREAD_ON_SHARE + 1, at_risk=svc.config.sla_at_risk,
                              reply_sla_seconds=svc.config.reply_sla_seconds)
    shown = sorted(thread[:THREAD_ON_SHARE], key=lambda r: (r["received_at"], str(r["id"])))
    authors = {r["network_reply_id"]: r["author_name"] or r["author"] for r in thread}
    for row in shown:
        row["parent_author"] = authors.get(row["parent_id"]) if row["parent_id"] else None
    view = share_view(state, history, svc.shares.clock(), at_risk=svc.config.sla_at_risk,
                      calendar_of=calendar_at_send(svc.store, workspace_id, state))
    # A thread's media show under the part that carries them (the share's own: the first part's).
    parts = view["parts"] or []
    parts_media = [media_shown(svc, workspace_id, (view["media"] if i == 0 else []) + p["media"])
                   for i, p in enumerate(parts)]
    return {"share": view, "media": [] if parts else media_shown(svc, workspace_id, view["media"]),
            "parts_media": parts_media,
            "events": [event_view(r) for r in history if r.type_name != "RepliesLooked"],
            "thread": shown, "thread_more": len(thread) > THREAD_ON_SHARE,
            "post_shares": post_shares(svc, workspace_id, state)}


def media_shown(svc: Services, workspace_id: str, planned: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The share's media as the page shows them: the share's own alt, the bytes from the
    dashboard's route (the page has a session, not a bearer token) and the library's
    dimensions (so the page does not jump as images load); ``gone`` once deleted from the
    library (a sent share's media may be)."""
    shown = []
    for m in planned:
        try:
            item = svc.media.get(workspace_id, UUID(m["id"])) if svc.media else None
        except NotFoundError:
            item = None
        shown.append({**m, "src": f"/dashboard/media/{m['id']}/content", "gone": item is None,
                      "width": item.width if item else None, "height": item.height if item else None,
                      "video": m["kind"] == "video"})
    return shown


def post_shares(svc: Services, workspace_id: str, state: ShareState) -> list[dict[str, Any]]:
    """The other shares of the share's post (POST /v1/posts), in the post's order; none for a
    share planned alone."""
    post_id = state.planned.post_id if state.planned else None
    if post_id is None:
        return []
    return [{"id": str(other.share_id), "account_name": other.planned.account_name,
             "channel": other.planned.channel, "status": other.status}
            for other, _ in svc.shares.load_post(workspace_id, post_id)
            if other.share_id != state.share_id and other.planned is not None]


def review(svc: Services, workspace_id: str, person: str) -> dict[str, Any]:
    """What waits for ``person`` to review (they are an approver of its account, and not its
    author unless the account allows self-approval), and their own shares waiting for others."""
    with svc.pool.connection() as conn:
        waiting = timeline.in_review(conn, workspace_id, limit=REVIEW_LIMIT)
        rules = {a.id: (a.name, approval.from_config(a.config)) for a in accounts.list_all(conn, workspace_id)}
    mine, theirs = [], []
    for row in waiting:
        name, rule = rules.get(row["account_id"], (row["account_name"], approval.NOT_REQUIRED))
        try:
            approval.check_reviewer(rule, person=person, author=row["author"], account=name)
        except ForbiddenError as why:
            if row["author"] == person:
                row["why"] = str(why)
                theirs.append(row)
            continue
        mine.append(row)
    return {"waiting": mine, "own": theirs, "person": person}


def wait_for_share(svc: Services, workspace_id: str, share_id: UUID, leaving: tuple[str, ...],
                   timeout: float = 3.0) -> bool:
    """Wait (briefly) for the projector to show a share out of ``leaving`` statuses, so the page
    redirected to no longer lists it."""
    deadline = time.monotonic() + timeout
    while True:
        with svc.pool.connection() as conn:
            if timeline.share_status(conn, workspace_id, str(share_id)) not in leaving:
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def health(svc: Services, workspace_id: str) -> dict[str, Any]:
    with svc.pool.connection() as conn:
        integrity = reports.sent_without_tasks(conn, workspace_id)
        figures = timeline.workspace_health(conn, workspace_id)
        lags = monitoring.follower_lags(conn)
        horizon = monitoring.horizon(conn)
    return {"integrity": integrity, "figures": figures, "lags": lags, "horizon": horizon}


def wait_for_task(svc: Services, workspace_id: str, task_id: UUID, status: str, timeout: float = 3.0) -> bool:
    """Wait (briefly) for the projector to show a task's new status, so the page redirected to shows it."""
    deadline = time.monotonic() + timeout
    while True:
        with svc.pool.connection() as conn:
            if timeline.task_status(conn, workspace_id, str(task_id)) == status:
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
