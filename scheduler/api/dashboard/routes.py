"""The dashboard's pages (GET) and forms (POST), under /dashboard."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode
from uuid import UUID

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from scheduler.api.dashboard import desk, filters, pages, period, session
from scheduler.api.dashboard.session import Forbidden, NotSignedIn, Session
from scheduler.api.deps import Services, ServicesDep
from scheduler.api.media import content_response, library
from scheduler.domain import inputs
from scheduler.errors import InvalidInputError, NotFoundError, SchedulerError
from scheduler.services import saved_replies, workspaces

log = structlog.get_logger("scheduler.api.dashboard")
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
filters.install(templates.env)
router = APIRouter(prefix="/dashboard", include_in_schema=False)
# Pages hold a session's data and its forms: not cached, not framed (clickjacking), no script
# or asset from elsewhere, and no address of ours sent along when a link leads off the site.
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
                               "media-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on our own forms.
    "Referrer-Policy": "same-origin",
}


def current(request: Request, svc: ServicesDep) -> Session:
    found = session.verify(svc.pool, request.cookies.get(session.COOKIE))
    if found is None:
        raise NotSignedIn
    return found


SessionDep = Annotated[Session, Depends(current)]


def _render(request: Request, name: str, who: Session | None, page: str, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request, name, {"session": who, "page": page, "now": datetime.now(UTC), **context},
        headers=HEADERS,
    )


def _params(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items() if v}


async def _form(request: Request, who: Session, *, write: bool = True) -> dict[str, str]:
    """The form's fields, once its origin, CSRF value and (for writes) token scope check out."""
    fields = {k: v[-1] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}
    if not session.same_origin(request):
        raise Forbidden("this form was sent from another site")
    if not who.csrf_ok(fields.get("csrf")):
        raise Forbidden("this form has expired; reload the page and try again")
    if write and not who.principal.can_write:
        raise Forbidden("this session has a read token; signing in with a write token lets you act")
    return fields


def _back(path: str, **params: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?{urlencode(params)}" if params else path, status_code=303)


@router.get("/signin", response_class=HTMLResponse)
def signin_page(request: Request, next: str = "/dashboard") -> HTMLResponse:
    return _render(request, "signin.html", None, "signin", next=_safe_next(next), error=None)


@router.post("/signin", response_model=None)
async def signin(request: Request, svc: ServicesDep) -> Response:
    fields = {k: v[-1] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}
    next_page = _safe_next(fields.get("next", "/dashboard"))
    if not session.same_origin(request):
        raise Forbidden("this form was sent from another site")
    token = fields.get("token", "").strip()
    found = await run_in_threadpool(_exchange, svc, token) if token else None
    if found is None:
        response = _render(request, "signin.html", None, "signin", next=next_page,
                           error="That token is unknown or revoked. Paste a token from "
                                 "`followthrough token create`.")
        response.status_code = 401
        return response
    redirect = RedirectResponse(next_page, status_code=303)
    redirect.set_cookie(value=found, max_age=session.LIFETIME_SECONDS, **session.cookie_settings(request))
    return redirect


def _exchange(svc: Services, token: str) -> str | None:
    with svc.pool.connection() as conn:
        principal = workspaces.authenticate(conn, token)
        found = None if principal is None else workspaces.session_key(conn, principal.token_id)
    return None if found is None else session.issue(*found)


def _safe_next(value: str) -> str:
    """Only a dashboard path: never an open redirect to another site."""
    ok = value.startswith("/dashboard") and not value.startswith("//") and "\\" not in value
    return value if ok else "/dashboard"


@router.post("/signout")
async def signout(request: Request, who: SessionDep) -> RedirectResponse:
    await _form(request, who, write=False)
    redirect = _back("/dashboard/signin")
    redirect.delete_cookie(**session.cookie_settings(request))
    return redirect


@router.get("", response_class=HTMLResponse)
def overview(request: Request, who: SessionDep, svc: ServicesDep) -> HTMLResponse:
    today = svc.shares.clock().date()
    chosen = period.parse(_params(request), today)
    data = pages.overview(svc, who.principal.workspace_id, chosen, today)
    return _render(request, "overview.html", who, "overview", period=chosen, presets=period.PRESETS, **data)


@router.get("/inbox", response_class=HTMLResponse)
def inbox(request: Request, who: SessionDep, svc: ServicesDep, *, done: str | None = None,
          error: str | None = None) -> HTMLResponse:
    data = pages.inbox(svc, who.principal.workspace_id, svc.shares.clock())
    return _render(request, "inbox.html", who, "inbox", done=done, error=error, **data)


@router.post("/inbox/{task_id}/complete")
async def complete(task_id: UUID, request: Request, who: SessionDep, svc: ServicesDep) -> RedirectResponse:
    fields = await _form(request, who)
    by = fields.get("completed_by", "").strip()[:200] or who.principal.actor
    try:
        await run_in_threadpool(svc.shares.complete_task, who.principal.workspace_id, task_id, by=by,
                                note=fields.get("note", "")[:2000], actor=who.principal.actor)
    except SchedulerError as exc:
        return _back("/dashboard/inbox", error=str(exc))
    await run_in_threadpool(pages.wait_for_task, svc, who.principal.workspace_id, task_id, "done")
    return _back("/dashboard/inbox", done=str(task_id))


@router.get("/shares", response_class=HTMLResponse)
def shares(request: Request, who: SessionDep, svc: ServicesDep) -> HTMLResponse:
    params = _params(request)
    chosen = period.parse(params, svc.shares.clock().date())
    data = pages.shares(svc, who.principal.workspace_id, chosen, params.get("status"))
    return _render(request, "shares.html", who, "shares", period=chosen, presets=period.PRESETS, **data)


@router.get("/shares/{share_id}", response_class=HTMLResponse)
def share(share_id: UUID, request: Request, who: SessionDep, svc: ServicesDep, *, done: str | None = None,
          error: str | None = None) -> HTMLResponse:
    try:
        data = pages.share(svc, who.principal.workspace_id, share_id)
    except NotFoundError:
        response = _render(request, "refused.html", who, "shares", heading="No such share",
                           reason=f"No share {share_id} in workspace {who.principal.workspace_id}.")
        response.status_code = 404
        return response
    return _render(request, "share.html", who, "shares", done=done, error=error, **data)


@router.get("/media/{media_id}/content", response_model=None)
def media_content(media_id: UUID, request: Request, who: SessionDep, svc: ServicesDep) -> Response:
    """A media item's bytes for the share page's <img>/<video>: the session's workspace only
    (the page has a cookie, not the API's bearer token), cached as the API's route is."""
    try:
        return content_response(library(svc), who.principal.workspace_id, media_id, request)
    except NotFoundError:
        return Response(f"No media {media_id} in this workspace.", status_code=404, media_type="text/plain",
                        headers={"Cache-Control": "no-store"})


@router.post("/shares/{share_id}/settle")
async def settle(share_id: UUID, request: Request, who: SessionDep, svc: ServicesDep) -> RedirectResponse:
    fields = await _form(request, who)
    here = f"/dashboard/shares/{share_id}"
    try:
        done = await run_in_threadpool(_settle, svc, who, share_id, fields)
    except (SchedulerError, ValueError) as exc:
        return _back(here, error=str(exc))
    return _back(here, done=done)


def _settle(svc: Services, who: Session, share_id: UUID, fields: dict[str, str]) -> str:
    ws, actor = who.principal.workspace_id, who.principal.actor
    action = fields.get("action")
    if action == "mark-sent":
        url = fields.get("url", "").strip()
        if not url.startswith(("https://", "http://", "at://")):
            raise ValueError("url: give the post's address (https://…, or a Bluesky post's at://…)")
        svc.shares.mark_sent(ws, share_id, url=url, external_id=fields.get("external_id") or None, sent_at=None,
                             actor=actor)
        return "marked sent"
    if action == "reschedule":
        try:
            moment = datetime.fromisoformat(fields.get("scheduled_at", "")).replace(tzinfo=UTC)
        except ValueError as exc:
            raise ValueError("scheduled_at: give a date and time (UTC)") from exc
        svc.shares.reschedule(ws, share_id, moment, actor=actor)
        return "rescheduled"
    if action == "retry":
        given = fields.get("scheduled_at", "").strip()
        try:
            when = datetime.fromisoformat(given).replace(tzinfo=UTC) if given else None
        except ValueError as exc:
            raise ValueError("scheduled_at: give a date and time (UTC), or leave it empty for now") from exc
        svc.shares.retry(ws, share_id, when, actor=actor)
        return "planned again"
    if action == "cancel":
        svc.shares.cancel(ws, share_id, reason=fields.get("reason", "")[:500], actor=actor)
        return "cancelled"
    raise ValueError("action: one of mark-sent, reschedule, retry, cancel")


@router.get("/review", response_class=HTMLResponse)
def review(request: Request, who: SessionDep, svc: ServicesDep, *, done: str | None = None,
           error: str | None = None) -> HTMLResponse:
    data = pages.review(svc, who.principal.workspace_id, who.principal.actor)
    return _render(request, "review.html", who, "review", done=REVIEWED.get(done or ""), error=error, **data)


REVIEWED = {"approved": "Approved: it goes out at its time (at once, late, if its time has passed).",
            "rejected": "Rejected: it is not published; its author sees why, and a change sends it back to review."}


@router.post("/review/{share_id}/{action}")
async def act_on_share(share_id: UUID, action: str, request: Request, who: SessionDep,
                       svc: ServicesDep) -> RedirectResponse:
    """Approve or reject a share through the share service (the API's rules: an approver, four
    eyes). Done or refused: back to the review page, saying which."""
    fields = await _form(request, who)
    ws, actor = who.principal.workspace_id, who.principal.actor
    try:
        if action == "approve":
            await run_in_threadpool(svc.shares.approve, ws, share_id, actor=actor)
        elif action == "reject":
            await run_in_threadpool(svc.shares.reject, ws, share_id, reason=fields.get("reason", "")[:1000],
                                    actor=actor)
        else:
            raise NotFoundError("action", action)
    except SchedulerError as exc:
        log.info("dashboard_review_refused", workspace_id=ws, share_id=str(share_id), action=action, reason=str(exc))
        return _back("/dashboard/review", error=_say(exc))
    await run_in_threadpool(pages.wait_for_share, svc, ws, share_id, ("in_review", "review_overdue"))
    return _back("/dashboard/review", done="approved" if action == "approve" else "rejected")


@router.get("/replies", response_class=HTMLResponse)
def replies(request: Request, who: SessionDep, svc: ServicesDep, *, done: str | None = None) -> HTMLResponse:
    chosen = desk.parse(_params(request), who.principal.owner)
    data = desk.page(svc, who.principal.workspace_id, chosen)
    return _render(request, "replies.html", who, "replies", done=DONE.get(done or ""), failed=None,
                   **data)


DONE = {"answered": "Your answer is on its way: its state shows on the reply (requested, sending, then answered "
                      "with its address).",
        "dismissed": "Reply dismissed.",
        "assigned": "Reply assigned."}


@router.post("/replies/{reply_id}/{action}", response_model=None)
async def act_on_reply(reply_id: UUID, action: str, request: Request, who: SessionDep, svc: ServicesDep) -> Response:
    """Answer, dismiss or assign a reply through the reply service (the API's path; an answer
    exactly once). An answer left empty with a saved reply picked is that saved reply, its
    placeholders filled for this reply. Done: back to the page (POST-redirect-GET) at the
    reply. Refused: the page again, with the reason on the reply and its draft kept, nothing
    written."""
    fields = await _form(request, who)
    chosen = desk.parse({k: v[-1] for k, v in parse_qs(fields.get("back", "")).items()}, who.principal.owner)
    ws, actor = who.principal.workspace_id, who.principal.actor
    text, assignee = fields.get("text", ""), None
    try:
        if action == "answer":
            if not text.strip() and fields.get("saved_reply_id"):
                text = await run_in_threadpool(_saved_text, svc, ws, fields["saved_reply_id"], reply_id)
            if len(text) > MAX_FORM_TEXT:
                raise InvalidInputError("text", f"is {len(text)} characters long; an answer may be at most "
                                                f"{MAX_FORM_TEXT}")
            await run_in_threadpool(svc.replies.answer, ws, reply_id, text=text, by=actor, unless_dismissed=True)
        elif action == "dismiss":
            await run_in_threadpool(svc.replies.dismiss, ws, reply_id, reason=fields.get("reason", "").strip()[:1000],
                                    by=actor)
        elif action == "assign":
            assignee = inputs.check_person(fields.get("owner", ""))
            await run_in_threadpool(svc.replies.assign, ws, reply_id, assignee=assignee, by=actor)
        else:
            raise NotFoundError("action", action)
    except SchedulerError as exc:
        log.info("dashboard_reply_refused", workspace_id=ws, reply_id=str(reply_id), action=action, reason=str(exc))
        data = await run_in_threadpool(desk.page, svc, ws, chosen, {reply_id: text})
        response = _render(request, "replies.html", who, "replies", done=None,
                           failed={"id": reply_id, "action": action, "error": _say(exc)}, **data)
        response.status_code = 404 if isinstance(exc, NotFoundError) else 422
        return response
    done = {"answer": "answered", "dismiss": "dismissed", "assign": "assigned"}[action]
    await run_in_threadpool(desk.wait_for_reply, svc, ws, reply_id, dismissed=action == "dismiss",
                            assignee=assignee)
    query = chosen.query(done=done)
    return RedirectResponse(f"/dashboard/replies?{query}#reply-{reply_id}", status_code=303)


def _saved_text(svc: Services, workspace_id: str, saved_reply_id: str, reply_id: UUID) -> str:
    try:
        chosen = UUID(saved_reply_id)
    except ValueError:
        raise InvalidInputError("saved_reply_id", "is not a saved reply's id") from None
    with svc.pool.connection() as conn:
        return saved_replies.filled(conn, workspace_id, chosen, reply_id)


MAX_FORM_TEXT = 5000


def _say(exc: SchedulerError) -> str:
    """The reason for a person: the field's message with the field named as the form names it."""
    if isinstance(exc, InvalidInputError) and exc.field == "text":
        return f"The answer {exc.message}."
    if isinstance(exc, InvalidInputError) and exc.field == "owner":
        return f"The person to assign it to {exc.message}."
    if isinstance(exc, NotFoundError) and exc.kind == "saved reply":
        return "That saved reply is gone (deleted meanwhile?): pick another, or write the answer."
    if isinstance(exc, NotFoundError) and exc.kind == "reply":
        return "This reply is not in this workspace (any more): reload the page."
    message = str(exc)
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


@router.get("/health", response_class=HTMLResponse)
def health(request: Request, who: SessionDep, svc: ServicesDep) -> HTMLResponse:
    return _render(request, "health.html", who, "health", **pages.health(svc, who.principal.workspace_id))
