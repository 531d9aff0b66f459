"""The replies page's cards (``/dashboard/replies``): each reply's ``<article>``, its thread
and its forms, written out in Python rather than in Jinja.

Why not the template: a card has some sixty values in it (its id alone seventeen times), and
Jinja looks each one up, escapes it and wraps it in ``Markup`` one at a time; for 50 cards that
was about half of the page's CPU in its process (issue #21; 10-16 ms, now 2). Here each value
is read and escaped once, and what every card shares (the forms' CSRF and ``back`` fields)
once per page. The markup is the template's as it was, byte for byte: test_dashboard_cards.py
renders both (the old loop is tests/unit/reply_cards_reference.html, with macros.html's
``sla``/``answer_state`` live, so a change to either shows there); the rest of the page stays
in ``replies.html``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from markupsafe import Markup

from scheduler.api.dashboard.desk import linkify
from scheduler.api.figures import when

_REL = 'rel="nofollow noopener noreferrer"'


def escape(value: Any) -> str:
    """markupsafe's ``escape`` (the same entities; HTML as it is), as a plain str: a third of
    its time, which was a ``Markup`` made for each of a card's values."""
    if type(value) is str:
        text: str = value
    else:
        html = getattr(value, "__html__", None)
        if html is not None:
            return str(html())
        text = str(value)
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;")
            .replace("'", "&#39;"))


def _sla(value: str | None) -> str:
    """macros.html's ``sla``."""
    if not value:
        return ""
    return f'<span class="badge badge-sla-{escape(value)}" title="SLA">{escape(value.replace("_", " "))}</span>'


def _answer_state(status: Any, url: str | None, error: str | None) -> str:
    """macros.html's ``answer_state`` (a status of None reads "None", as Jinja writes it)."""
    s = escape(status)
    out = f'<span class="badge badge-answer-{s}" data-answer="{s}">{s}</span>'
    if status == "answered" and url:
        u = escape(url)
        out += f' <a class="answer-url" href="{u}" {_REL}>{u}</a>'
    if status == "failed" and error:
        out += f' <span class="error-text">{escape(error)}</span>'
    return out


def _thread(r: Mapping[str, Any], channel: str) -> str:
    out = []
    for p in r["thread"]:
        if p.get("missing"):
            out.append('\n      <li class="missing"><span class="by">A reply not collected (yet)</span></li>'
                       '\n      \n      ')
            continue
        by = (f"{escape(p['author_name'])} ({escape(p['author'])})" if p["author_name"] else escape(p["author"]))
        if p["answer_text"]:
            answer = (f'<div class="our-answer"><span class="by">Answered by the team '
                      f'{_answer_state(p["answer_status"], p["answer_url"], None)}</span>'
                      f'<p class="text">{linkify(p["answer_text"])}</p></div>\n        ')
        elif p["answered_natively"]:
            answer = f'<div class="our-answer"><span class="by">Answered by the team on {channel}</span></div>'
        else:
            answer = ""
        out.append(f'\n      \n      <li><span class="by">{by} · {escape(when(p["received_at"]))}</span>\n'
                   f'        <p class="text">{linkify(p["text"])}</p>\n'
                   f'        {answer}\n      </li>\n      \n      ')
    return "".join(out)


def card(r: Mapping[str, Any], forms: str | None, failed: Mapping[str, Any] | None) -> str:
    """One reply's ``<article>``; ``forms``: the hidden fields its forms share (None: a read
    token's page, no forms)."""
    rid = str(r["id"])
    state, sla = escape(r["state"]), r["sla"]
    channel = escape(r["channel"])
    author_url = r["author_url"]
    handle = escape(r["handle"])
    name = (f'<span class="name">{escape(r["author_name"])}</span> <span class="handle">{handle}</span>'
            if r["author_name"] else handle)
    if author_url:
        name = f'<a href="{escape(author_url)}" {_REL}>{name}</a>'
    received = r["received_at"]
    moment = f'<time datetime="{escape(received.isoformat())}">{escape(when(received))}</time>'
    if r["url"]:
        moment = f'<a href="{escape(r["url"])}" {_REL}>{moment}</a>'
    assignee = ""
    if r["assignee"]:
        a = escape(r["assignee"])
        who = f"assigned to <strong>{a}</strong>" if r["assigned"] else f"owner {a}"
        assignee = f'· <span class="assignee" data-assignee="{a}">{who}</span>'
    due = f' <span class="due">due {escape(when(r["sla_due_at"]))}</span>' if sla and r["sla_due_at"] else ""
    thread, parent = r["thread"], r["parent_id"]
    post_link = (f' · <a href="{escape(r["post_url"])}" rel="noopener noreferrer">on {channel}</a>'
                 if r["post_url"] else "")
    out = [
        f'<article class="reply card state-{state}{f" sla-{escape(sla)}" if sla else ""}" id="reply-{rid}" '
        f'data-reply-id="{rid}" data-state="{state}" aria-labelledby="author-{rid}">\n'
        f'  <header class="reply-head">\n'
        f'    <h2 class="author" id="author-{rid}">{name}</h2>\n'
        f'    <span class="meta">\n'
        f'      {moment}\n'
        f'      · {escape(r["account_name"])} ({channel})\n'
        f'      {assignee}\n'
        f'    </span>\n'
        f'    <span class="states"><span class="badge badge-{state}">{state}</span> {_sla(sla)}{due}</span>\n'
        f'  </header>\n'
        f'  <details class="thread"{" open" if thread or parent is None else ""}>\n'
        f'    <summary>In reply to {"the post" if parent is None else "a reply"}'
        f'{f" ({len(thread) + 1} above)" if thread else ""}</summary>\n'
        f'    <ol class="above">\n'
        f'      <li class="post">\n'
        f'        <span class="by">The post{post_link} · <a href="/dashboard/shares/{r["share_id"]}">share</a></span>\n'
        f'        <p class="text">{linkify(r["post_text"])}</p>\n'
        f'      </li>\n      {_thread(r, channel)}\n'
        f'    </ol>\n'
        f'  </details>\n'
        f'  <p class="text reply-text">{linkify(r["text"])}</p>\n  ',
    ]
    status = r["answer_status"]
    if status or r["answered_natively"]:
        shown = status or "answered"
        body = (f'<p class="text">{linkify(r["answer_text"])}</p>' if r["answer_text"] else
                f'<p class="hint">Answered on {channel} directly.</p>' if r["answered_natively"] else "")
        state_of = _answer_state(shown, r["answer_url"], r["answer_error"])
        out.append(f'\n  <div class="our-answer answer-{escape(shown)}">\n'
                   f'    <span class="by">Our answer {state_of}</span>\n'
                   f'    {body}\n'
                   f'  </div>\n  ')
    out.append("\n  ")
    if r["state"] == "dismissed":
        reason = f": {escape(r['dismiss_reason'])}" if r["dismiss_reason"] else ""
        out.append(f'<p class="hint dismissed">Dismissed {escape(when(r["dismissed_at"]))}{reason}</p>')
    out.append("\n  ")
    failed_here = failed is not None and bool(failed) and failed["id"] == r["id"]
    if failed is not None and failed_here:
        out.append(f'<p class="notice error" id="error-{rid}">{escape(failed["error"])}</p>')
    out.append("\n  \n  ")
    if forms is not None and r["state"] == "unanswered" and status in (None, "failed"):
        out.append(_forms(r, rid, channel, forms, failed_here))
    out.append("\n</article>")
    return "".join(out)


def _forms(r: Mapping[str, Any], rid: str, channel: str, forms: str, failed_here: bool) -> str:
    saved = ""
    if r["saved"]:
        options = "".join(f'<option value="{escape(sid)}" data-text="{escape(filled)}">{escape(name)}</option>'
                          for sid, name, filled in r["saved"])
        saved = (f'<div class="saved">\n'
                 f'        <label for="saved-{rid}">Saved reply</label>\n'
                 f'        <select id="saved-{rid}" name="saved_reply_id" data-for="text-{rid}" '
                 f'aria-describedby="saved-hint-{rid}">\n'
                 f'          <option value="">none</option>\n'
                 f'          {options}\n'
                 f'        </select>\n'
                 f'        <span class="hint" id="saved-hint-{rid}">'
                 f'sent as it is when the answer is left empty</span>\n'
                 f'      </div>')
    limit = r["limit"]
    unit = escape(limit.unit)
    weight = "" if limit.url_weight is None else escape(limit.url_weight)
    left = r["left"]
    return (
        f'\n  <div class="act">\n'
        f'    <form class="answer" method="post" action="/dashboard/replies/{rid}/answer">\n'
        f'{forms}'
        f'      {saved}\n'
        f'      <label for="text-{rid}">Answer {escape(r["author_name"] or r["handle"])}</label>\n'
        f'      <textarea id="text-{rid}" name="text" rows="3" data-max="{escape(limit.maximum)}" data-unit="{unit}" '
        f'data-url-weight="{weight}" aria-describedby="left-{rid}{f" error-{rid}" if failed_here else ""}">'
        f'{escape(r["draft"])}</textarea>\n'
        f'      <div class="send">\n'
        f'        <span class="left{" over" if left < 0 else ""}" id="left-{rid}" aria-live="polite">'
        f'<span class="n">{escape(left)}</span> {unit} left on {channel}</span>\n'
        f'        <button type="submit">Answer</button>\n'
        f'      </div>\n'
        f'    </form>\n'
        f'    <div class="side">\n'
        f'    <form class="assign" method="post" action="/dashboard/replies/{rid}/assign">\n'
        f'{forms}'
        f'      <label for="owner-{rid}">Give it to</label>\n'
        f'      <div class="send">\n'
        f'        <input id="owner-{rid}" name="owner" type="text" list="people" maxlength="200" required '
        f'autocomplete="off" placeholder="a person\'s name">\n'
        f'        <button type="submit" class="secondary">Assign</button>\n'
        f'      </div>\n'
        f'    </form>\n'
        f'    <form class="dismiss" method="post" action="/dashboard/replies/{rid}/dismiss">\n'
        f'{forms}'
        f'      <label for="reason-{rid}">No answer needed: reason</label>\n'
        f'      <div class="send">\n'
        f'        <input id="reason-{rid}" name="reason" type="text" maxlength="1000" placeholder="optional">\n'
        f'        <button type="submit" class="secondary">Dismiss</button>\n'
        f'      </div>\n'
        f'    </form>\n'
        f'    </div>\n'
        f'  </div>\n  '
    )


def reply_cards(replies: Iterable[Mapping[str, Any]], csrf: str, back: str, can_write: bool,
                failed: Mapping[str, Any] | None = None) -> Markup:
    """The page's cards (Jinja filter ``reply_cards``), each between newlines as the
    template's loop wrote them; every value in them escaped above."""
    forms = (f'      <input type="hidden" name="csrf" value="{escape(csrf)}">\n'
             f'      <input type="hidden" name="back" value="{escape(back)}">\n') if can_write else None
    return Markup("".join(f"\n{card(r, forms, failed)}\n" for r in replies))  # noqa: S704 -- escaped in card()
