"""The Mastodon and Bluesky publishers against fake networks served on loopback.

The fakes behave like the real APIs where the publishers depend on it: Mastodon
dedupes by ``Idempotency-Key``, renders ``content`` as HTML (links with hidden spans,
remote mentions shortened to ``@user``) and pages statuses newest first; Bluesky issues
sessions that expire (400 ExpiredToken), refuses a second record at the same key (500, as
the reference PDS does today, or 409/400 as others do) and answers RecordNotFound.
Both can fail the next requests with a given answer, or answer too late after doing
the work (a read timeout whose outcome is unknown). No database is needed.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import re
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from scheduler.domain.share import idempotency_key
from tests.support.servers import free_port, serve
from workers.channels import ChannelError, PermanentChannelError, Post, Published, TransientChannelError
from workers.channels.bluesky import BlueskyPublisher, record_key
from workers.channels.mastodon import MastodonPublisher

TOKEN = "mastodon-token-5ecret-0f-the-team"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"
HANDLE = "team.example.com"
DID = "did:plc:faketeam0000000000000000"
READ_TIMEOUT = 0.5
HANG = 1.5  # longer than READ_TIMEOUT: the fake does the work, then answers too late
TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- the fakes -----------------------------------------------------------------------


@dataclass
class Fault:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    path: str | None


class Injected(Exception):
    def __init__(self, fault: Fault) -> None:
        self.fault = fault


@dataclass
class FakeNetwork:
    """What both fakes share: injected failures, late answers, and a log of requests."""

    base_url: str = ""
    faults: list[Fault] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    hang_next: float = 0.0
    echo_credentials: bool = False  # a misbehaving server that repeats what it was sent

    def fail_next(
        self,
        times: int,
        status: int,
        *,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        path: str | None = None,
    ) -> None:
        self.faults += [Fault(status, body or {"error": f"injected {status}"}, headers or {}, path)] * times

    def app(self) -> FastAPI:
        async def intercept(request: Request) -> None:
            self.requests.append(f"{request.method} {request.url.path}")
            for fault in self.faults:
                if fault.path is None or request.url.path.endswith(fault.path):
                    self.faults.remove(fault)
                    raise Injected(fault)

        async def injected(request: Request, exc: Exception) -> JSONResponse:
            assert isinstance(exc, Injected)
            return JSONResponse(exc.fault.body, status_code=exc.fault.status, headers=exc.fault.headers)

        app = FastAPI(dependencies=[Depends(intercept)])
        app.add_exception_handler(Injected, injected)
        return app

    async def answer_late(self) -> None:
        delay, self.hang_next = self.hang_next, 0.0
        await asyncio.sleep(delay)


class FakeMastodon(FakeNetwork):
    def __init__(self) -> None:
        super().__init__()
        self.reset()

    def reset(self) -> None:
        self.faults, self.requests, self.hang_next, self.echo_credentials = [], [], 0.0, False
        self.statuses: list[dict[str, Any]] = []  # oldest first
        self.by_key: dict[str, dict[str, Any]] = {}
        self.creations = 0
        self.next_id = 110_000_000_000_000_000

    def forget_idempotency_keys(self) -> None:
        """An hour has passed: Mastodon no longer knows the keys."""
        self.by_key.clear()

    def seed(self, text: str, created_at: datetime) -> dict[str, Any]:
        self.next_id += 1
        status = {
            "id": str(self.next_id),
            "created_at": iso(created_at),
            "content": render(text),
            "url": f"{self.base_url}/@team/{self.next_id}",
            "uri": f"{self.base_url}/users/team/statuses/{self.next_id}",
            "visibility": "public",
            "account": {"id": "42", "username": "team"},
        }
        self.statuses.append(status)
        return status

    def build(self) -> FastAPI:
        app = self.app()

        def refused(request: Request) -> JSONResponse | None:
            given = request.headers.get("authorization", "")
            if given == f"Bearer {TOKEN}":
                return None
            error = "The access token is invalid" + (f" ({given})" if self.echo_credentials else "")
            return JSONResponse({"error": error}, status_code=401)

        @app.post("/api/v1/statuses")
        async def create(request: Request) -> Any:
            if (no := refused(request)) is not None:
                return no
            text = str((await request.json()).get("status", "")).strip()
            if not text or len(text) > 500:
                return JSONResponse({"error": "Validation failed: Text character limit of 500 exceeded"}, 422)
            key = request.headers.get("idempotency-key")
            status = self.by_key.get(key) if key else None
            if status is None:
                status = self.seed(text, now())
                self.creations += 1
                if key:
                    self.by_key[key] = status
            await self.answer_late()
            return status

        @app.get("/api/v1/accounts/verify_credentials")
        async def me(request: Request) -> Any:
            return refused(request) or {"id": "42", "username": "team", "acct": "team"}

        @app.get("/api/v1/accounts/{account_id}/statuses")
        async def statuses(request: Request, account_id: str, limit: int = 20, max_id: str | None = None) -> Any:
            if (no := refused(request)) is not None:
                return no
            newest_first = [s for s in reversed(self.statuses) if max_id is None or int(s["id"]) < int(max_id)]
            return newest_first[: min(limit, 40)] if account_id == "42" else JSONResponse({"error": "Not found"}, 404)

        return app


def render(text: str) -> str:
    """Mastodon's HTML for a status: paragraphs, <br />, links with hidden parts, mentions, tags."""

    def word(token: str) -> str:
        if link := re.fullmatch(r"(https?://)(\S+)", token):
            scheme, rest = link.groups()
            return (
                f'<a href="{html.escape(token)}" rel="nofollow noopener" target="_blank">'
                f'<span class="invisible">{scheme}</span><span class="ellipsis">{html.escape(rest[:12])}</span>'
                f'<span class="invisible">{html.escape(rest[12:])}</span></a>'
            )
        if mention := re.fullmatch(r"@(\w+)@([\w.-]+\w)", token):
            user, host = mention.groups()
            anchor = f'<a href="https://{host}/@{user}" class="u-url mention">@<span>{user}</span></a>'
            return f'<span class="h-card">{anchor}</span>'
        if tag := re.fullmatch(r"#(\w+)", token):
            return f'<a href="/tags/{tag[1]}" class="mention hashtag" rel="tag">#<span>{tag[1]}</span></a>'
        return html.escape(token)

    def line(text: str) -> str:
        return "".join(word(t) if t.strip() else t for t in re.split(r"(\s+)", text))

    paragraphs = re.split(r"\n{2,}", text.strip())
    return "".join("<p>" + "<br />".join(line(x) for x in p.split("\n")) + "</p>" for p in paragraphs)


class FakeBluesky(FakeNetwork):
    def __init__(self) -> None:
        super().__init__()
        self.reset()

    def reset(self) -> None:
        self.faults, self.requests, self.hang_next, self.echo_credentials = [], [], 0.0, False
        self.tokens: dict[str, bool] = {}  # access token -> expired
        self.sessions_created = 0
        self.issue_expired = False  # a server that refuses every session it hands out
        self.records: dict[str, dict[str, Any]] = {}
        self.creations = 0
        self.conflict = "500"  # how a second write to a key is refused

    def expire_sessions(self) -> None:
        self.tokens = dict.fromkeys(self.tokens, True)

    def seed(self, rkey: str, text: str) -> dict[str, Any]:
        value = {"$type": "app.bsky.feed.post", "text": text, "createdAt": iso(now())}
        cid = "bafyrei" + hashlib.sha256(repr(value).encode()).hexdigest()[:40]
        self.records[rkey] = {"uri": f"at://{DID}/app.bsky.feed.post/{rkey}", "cid": cid, "value": value}
        return self.records[rkey]

    def build(self) -> FastAPI:
        app = self.app()

        def xrpc_error(status: int, error: str, message: str) -> JSONResponse:
            return JSONResponse({"error": error, "message": message}, status_code=status)

        def refused(request: Request) -> JSONResponse | None:
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            if token not in self.tokens:
                return xrpc_error(401, "AuthenticationRequired", "Authentication Required")
            return xrpc_error(400, "ExpiredToken", "Token has expired") if self.tokens[token] else None

        @app.post("/xrpc/com.atproto.server.createSession")
        async def create_session(request: Request) -> Any:
            body = await request.json()
            if body.get("identifier") not in (HANDLE, DID) or body.get("password") != APP_PASSWORD:
                echo = f" ({body.get('password')})" if self.echo_credentials else ""
                return xrpc_error(401, "AuthenticationRequired", "Invalid identifier or password" + echo)
            self.sessions_created += 1
            token = f"jwt-{self.sessions_created}-{uuid4().hex}"
            self.tokens[token] = self.issue_expired
            return {"accessJwt": token, "refreshJwt": "r" + token, "handle": HANDLE, "did": DID, "active": True}

        @app.post("/xrpc/com.atproto.repo.createRecord")
        async def create_record(request: Request) -> Any:
            if (no := refused(request)) is not None:
                return no
            body = await request.json()
            rkey, text = body.get("rkey", ""), body.get("record", {}).get("text", "")
            if body.get("repo") not in (DID, HANDLE):
                return xrpc_error(401, "AuthenticationRequired", "Authentication Required")
            if not TID.match(rkey):  # strict PDSes hold post keys to the lexicon's key type
                return xrpc_error(400, "InvalidRequest", f"Invalid record key: {rkey}")
            if len(text) > 300:
                return xrpc_error(
                    400,
                    "InvalidRequest",
                    "Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes",
                )
            if rkey in self.records:
                return {
                    "500": xrpc_error(500, "InternalServerError", "Internal Server Error"),
                    "409": xrpc_error(409, "RecordAlreadyExists", "Record already exists"),
                    "400": xrpc_error(400, "InvalidRequest", "Record already exists"),
                }[self.conflict]
            record = self.seed(rkey, text)
            record["value"] = body["record"]
            self.creations += 1
            await self.answer_late()
            return {"uri": record["uri"], "cid": record["cid"], "validationStatus": "valid"}

        @app.get("/xrpc/com.atproto.repo.getRecord")
        async def get_record(request: Request, repo: str, collection: str, rkey: str) -> Any:
            if (no := refused(request)) is not None:
                return no
            if repo in (DID, HANDLE) and rkey in self.records:
                return self.records[rkey]
            return xrpc_error(400, "RecordNotFound", f"Could not locate record: at://{repo}/{collection}/{rkey}")

        return app


# --- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mastodon_server() -> Iterator[FakeMastodon]:
    fake = FakeMastodon()
    with serve(fake.build()) as url:
        fake.base_url = url
        yield fake


@pytest.fixture(scope="module")
def bluesky_server() -> Iterator[FakeBluesky]:
    fake = FakeBluesky()
    with serve(fake.build()) as url:
        fake.base_url = url
        yield fake


@pytest.fixture
def mastodon(mastodon_server: FakeMastodon) -> FakeMastodon:
    mastodon_server.reset()
    return mastodon_server


@pytest.fixture
def bluesky(bluesky_server: FakeBluesky) -> FakeBluesky:
    bluesky_server.reset()
    return bluesky_server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=httpx.Timeout(5.0, read=READ_TIMEOUT)) as c:
        yield c


@pytest.fixture
def to_mastodon(client: httpx.Client) -> MastodonPublisher:
    return MastodonPublisher(client, env={"TEAM_MASTODON_TOKEN": TOKEN})


@pytest.fixture
def to_bluesky(client: httpx.Client) -> BlueskyPublisher:
    return BlueskyPublisher(client, env={"TEAM_BLUESKY_PASSWORD": APP_PASSWORD})


def mastodon_post(fake: FakeMastodon, text: str = "We launched! https://example.com/launch", **kw: Any) -> Post:
    config = {"base_url": fake.base_url, "access_token_env": "TEAM_MASTODON_TOKEN", "visibility": "public"}
    return post(config, text, **kw)


def bluesky_post(fake: FakeBluesky, text: str = "We launched! https://example.com/launch", **kw: Any) -> Post:
    config = {"service": fake.base_url, "handle": HANDLE, "app_password_env": "TEAM_BLUESKY_PASSWORD"}
    return post(config, text, **kw)


def post(
    config: dict[str, Any], text: str, *, share_id: UUID | None = None, scheduled_at: datetime | None = None
) -> Post:
    share_id = share_id or uuid4()
    return Post(
        share_id=share_id,
        workspace_id="default",
        account_name="team",
        account_config=config,
        text=text,
        scheduled_at=scheduled_at or now() - timedelta(seconds=1),
        idempotency_key=idempotency_key(share_id),
        attempt=1,
    )


def everything_said(exc: BaseException) -> str:
    """The error, its reason and its whole chain of causes, as a log or a traceback would show them."""
    return "".join(traceback.format_exception(exc)) + repr(exc) + getattr(exc, "reason", "")


# --- Mastodon ------------------------------------------------------------------------


def test_given_a_mastodon_account_when_a_share_is_published_then_the_status_id_and_url_are_returned(
    mastodon: FakeMastodon, to_mastodon: MastodonPublisher
) -> None:
    published = to_mastodon.publish(mastodon_post(mastodon))

    [status] = mastodon.statuses
    assert published == Published(external_id=status["id"], url=status["url"])


def test_given_a_share_published_once_when_it_is_published_again_then_mastodon_keeps_one_status(
    mastodon: FakeMastodon, to_mastodon: MastodonPublisher
) -> None:
    share = mastodon_post(mastodon)

    first, second = to_mastodon.publish(share), to_mastodon.publish(share)

    assert first == second
    assert mastodon.creations == 1


@pytest.mark.parametrize(
    ("status", "headers", "expected", "retry_after", "outcome_unknown"),
    [
        pytest.param(401, {}, PermanentChannelError, None, False, id="401 bad token"),
        pytest.param(403, {}, PermanentChannelError, None, False, id="403 missing scope"),
        pytest.param(404, {}, PermanentChannelError, None, False, id="404 no such account"),
        pytest.param(429, {"Retry-After": "30"}, TransientChannelError, 30, False, id="429 Retry-After seconds"),
        pytest.param(429, {"Retry-After": "+120 date"}, TransientChannelError, 120, False, id="429 Retry-After date"),
        pytest.param(429, {"X-RateLimit-Reset": "+60 iso"}, TransientChannelError, 60, False, id="429 Mastodon reset"),
        pytest.param(500, {}, TransientChannelError, None, True, id="500 after the request arrived"),
        pytest.param(503, {"Retry-After": "5"}, TransientChannelError, 5, True, id="503 with Retry-After"),
    ],
)
def test_given_mastodon_answers_an_error_when_publishing_then_it_becomes_the_matching_channel_error(
    mastodon: FakeMastodon,
    to_mastodon: MastodonPublisher,
    status: int,
    headers: dict[str, str],
    expected: type[ChannelError],
    retry_after: int | None,
    outcome_unknown: bool,
) -> None:
    later = now() + timedelta(seconds=retry_after or 0)
    dated = {"+120 date": format_datetime(later, usegmt=True), "+60 iso": iso(later)}
    mastodon.fail_next(1, status, headers={k: dated.get(v, v) for k, v in headers.items()})

    with pytest.raises(expected) as caught:
        to_mastodon.publish(mastodon_post(mastodon))

    assert f"answered {status}" in caught.value.reason
    if isinstance(caught.value, TransientChannelError):
        assert caught.value.outcome_unknown is outcome_unknown
        if retry_after is None:
            assert caught.value.retry_after is None
        else:
            assert caught.value.retry_after is not None
            assert abs(caught.value.retry_after - timedelta(seconds=retry_after)) <= timedelta(seconds=2)


def test_given_text_mastodon_rejects_when_publishing_then_the_error_is_permanent_and_says_why(
    mastodon: FakeMastodon, to_mastodon: MastodonPublisher
) -> None:
    with pytest.raises(PermanentChannelError) as caught:
        to_mastodon.publish(mastodon_post(mastodon, "x" * 501))

    assert caught.value.reason == "mastodon answered 422: Validation failed: Text character limit of 500 exceeded"
    assert mastodon.creations == 0


def test_given_nothing_listens_when_publishing_then_the_failure_is_transient_and_surely_published_nothing(
    mastodon: FakeMastodon, to_mastodon: MastodonPublisher
) -> None:
    share = mastodon_post(mastodon)
    nowhere = replace(share, account_config={**share.account_config, "base_url": f"http://127.0.0.1:{free_port()}"})

    with pytest.raises(TransientChannelError) as caught:
        to_mastodon.publish(nowhere)

    assert caught.value.outcome_unknown is False


def test_given_mastodon_posted_but_answered_too_late_then_the_outcome_is_unknown_and_find_returns_that_status(
    mastodon: FakeMastodon, to_mastodon: MastodonPublisher
) -> None:
    share = mastodon_post(mastodon)
    mastodon.hang_next = HANG

    with pytest.raises(TransientChannelError) as caught:
        to_mastodon.publish(share)
    found = to_mastodon.find(share)

    assert caught.value.outcome_unknown is True
    [status] = mastodon.statuses
    assert found == Published(external_id=status["id"], url=status["url"])
    assert mastodon.creations == 1


def test_given_the_idempotency_key_has_expired_when_find_runs_then_it_recognises_the_status_by_its_visible_text(
    mastodon: FakeMastodon, to_mastodon: MastodonPublisher
) -> None:
    text = "Launch day 🚀 with @ana@example.social & #friends:\nread https://example.com/a/very/long/path?x=1&y=<2>\n\nThanks!"
    share = mastodon_post(mastodon, text)
    published = to_mastodon.publish(share)
    mastodon.forget_idempotency_keys()
    mastodon.seed("Something else entirely", now())  # newer, and not ours

    assert "<span" in mastodon.statuses[0]["content"]
    assert to_mastodon.find(share) == published


def test_given_only_older_or_different_statuses_when_find_runs_then_nothing_is_found(
    mastodon: FakeMastodon, to_mastodon: MastodonPublisher
) -> None:
    share = mastodon_post(mastodon, "Weekly update", scheduled_at=now())
    mastodon.seed("Weekly update", now() - timedelta(days=7))  # same words, last week
    mastodon.seed("Weekly update, again", now())

    assert to_mastodon.find(share) is None


def test_given_our_status_is_several_pages_back_when_find_runs_then_it_pages_until_it_finds_it(
    mastodon: FakeMastodon, to_mastodon: MastodonPublisher
) -> None:
    share = mastodon_post(mastodon, "The one", scheduled_at=now() - timedelta(minutes=1))
    ours = mastodon.seed("The one", now())
    for n in range(90):
        mastodon.seed(f"chatter {n}", now())

    assert to_mastodon.find(share) == Published(external_id=ours["id"], url=ours["url"])


def test_given_mastodon_fails_while_reconciling_when_find_runs_then_the_outcome_stays_unknown(
    mastodon: FakeMastodon, to_mastodon: MastodonPublisher
) -> None:
    mastodon.fail_next(1, 429, headers={"Retry-After": "7"})

    with pytest.raises(TransientChannelError) as caught:
        to_mastodon.find(mastodon_post(mastodon))

    assert caught.value.outcome_unknown is True
    assert caught.value.retry_after == timedelta(seconds=7)


def test_given_the_token_variable_is_not_set_when_publishing_then_the_error_names_it_and_nothing_is_sent(
    mastodon: FakeMastodon, client: httpx.Client
) -> None:
    publisher = MastodonPublisher(client, env={})

    with pytest.raises(PermanentChannelError) as caught:
        publisher.publish(mastodon_post(mastodon))

    assert "TEAM_MASTODON_TOKEN" in caught.value.reason
    assert mastodon.requests == []


def test_given_a_server_that_echoes_the_token_when_it_refuses_it_then_no_error_repeats_the_token(
    mastodon: FakeMastodon, client: httpx.Client
) -> None:
    mastodon.echo_credentials = True
    wrong = "mastodon-token-revoked-but-still-secret"
    publisher = MastodonPublisher(client, env={"TEAM_MASTODON_TOKEN": wrong})

    with pytest.raises(PermanentChannelError) as caught:
        publisher.publish(mastodon_post(mastodon))

    assert "answered 401" in caught.value.reason
    assert "[redacted]" in caught.value.reason
    assert wrong not in everything_said(caught.value)


def test_given_a_read_timeout_then_no_error_repeats_the_token(
    mastodon: FakeMastodon, to_mastodon: MastodonPublisher
) -> None:
    mastodon.hang_next = HANG

    with pytest.raises(TransientChannelError) as caught:
        to_mastodon.publish(mastodon_post(mastodon))

    assert TOKEN not in everything_said(caught.value)


# --- Bluesky -------------------------------------------------------------------------


def test_given_a_bluesky_account_when_a_share_is_published_then_the_record_sits_at_the_key_derived_from_the_share(
    bluesky: FakeBluesky, to_bluesky: BlueskyPublisher
) -> None:
    share = bluesky_post(bluesky)

    published = to_bluesky.publish(share)

    rkey = record_key(share)
    assert TID.match(rkey)
    assert list(bluesky.records) == [rkey]
    assert published == Published(
        external_id=f"at://{DID}/app.bsky.feed.post/{rkey}", url=f"https://bsky.app/profile/{HANDLE}/post/{rkey}"
    )


def test_given_a_share_then_its_record_key_is_the_same_on_every_attempt_and_sorts_by_scheduled_time(
    bluesky: FakeBluesky,
) -> None:
    nine = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    share = bluesky_post(bluesky, scheduled_at=nine)
    retry = replace(share, attempt=2)
    same_time = bluesky_post(bluesky, scheduled_at=nine)
    a_second_later = bluesky_post(bluesky, scheduled_at=nine + timedelta(seconds=1))

    assert record_key(retry) == record_key(share)
    assert record_key(same_time) != record_key(share)
    assert record_key(share) < record_key(a_second_later)


@pytest.mark.parametrize("conflict", ["500", "409", "400"])
def test_given_the_record_already_exists_when_publishing_again_then_the_existing_record_is_returned(
    bluesky: FakeBluesky, to_bluesky: BlueskyPublisher, conflict: str
) -> None:
    bluesky.conflict = conflict
    share = bluesky_post(bluesky)

    first, second = to_bluesky.publish(share), to_bluesky.publish(share)

    assert first == second
    assert bluesky.creations == 1


def test_given_another_post_holds_the_record_key_when_publishing_then_the_error_is_permanent(
    bluesky: FakeBluesky, to_bluesky: BlueskyPublisher
) -> None:
    share = bluesky_post(bluesky)
    bluesky.seed(record_key(share), "not ours")

    with pytest.raises(PermanentChannelError, match="already holds a different post"):
        to_bluesky.publish(share)


def test_given_links_in_the_text_when_publishing_then_the_record_carries_link_facets_at_utf8_offsets(
    bluesky: FakeBluesky, to_bluesky: BlueskyPublisher
) -> None:
    text = "Café ☕ notes: https://example.com/notes."
    to_bluesky.publish(bluesky_post(bluesky, text))

    [record] = bluesky.records.values()
    [facet] = record["value"]["facets"]
    start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
    assert text.encode()[start:end] == b"https://example.com/notes"
    assert facet["features"] == [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/notes"}]


def test_given_a_session_when_publishing_twice_then_it_is_created_once(
    bluesky: FakeBluesky, to_bluesky: BlueskyPublisher
) -> None:
    to_bluesky.publish(bluesky_post(bluesky))
    to_bluesky.publish(bluesky_post(bluesky, "a second share"))

    assert bluesky.sessions_created == 1
    assert bluesky.creations == 2


def test_given_an_expired_session_when_publishing_then_it_is_refreshed_once_and_the_post_goes_out(
    bluesky: FakeBluesky, to_bluesky: BlueskyPublisher
) -> None:
    to_bluesky.publish(bluesky_post(bluesky))
    bluesky.expire_sessions()

    to_bluesky.publish(bluesky_post(bluesky, "after the token expired"))

    assert bluesky.sessions_created == 2
    assert bluesky.creations == 2


def test_given_a_server_that_refuses_every_session_when_publishing_then_it_gives_up_after_one_refresh(
    bluesky: FakeBluesky, to_bluesky: BlueskyPublisher
) -> None:
    bluesky.issue_expired = True

    with pytest.raises(PermanentChannelError, match="ExpiredToken"):
        to_bluesky.publish(bluesky_post(bluesky))

    assert bluesky.sessions_created == 2


def test_given_a_wrong_app_password_when_publishing_then_the_error_is_permanent_and_never_shows_it(
    bluesky: FakeBluesky, client: httpx.Client
) -> None:
    bluesky.echo_credentials = True
    wrong = "wxyz-wxyz-wxyz-wxyz"
    publisher = BlueskyPublisher(client, env={"TEAM_BLUESKY_PASSWORD": wrong})

    with pytest.raises(PermanentChannelError) as caught:
        publisher.publish(bluesky_post(bluesky))

    assert "answered 401" in caught.value.reason
    assert wrong not in everything_said(caught.value)


def test_given_the_app_password_variable_is_not_set_when_publishing_then_the_error_names_it_and_nothing_is_sent(
    bluesky: FakeBluesky, client: httpx.Client
) -> None:
    with pytest.raises(PermanentChannelError, match="TEAM_BLUESKY_PASSWORD"):
        BlueskyPublisher(client, env={}).publish(bluesky_post(bluesky))

    assert bluesky.requests == []


@pytest.mark.parametrize(
    ("path", "status", "body", "headers", "expected", "outcome_unknown"),
    [
        pytest.param(
            "createRecord",
            429,
            {"error": "RateLimitExceeded"},
            {"RateLimit-Reset": "+90 unix"},
            TransientChannelError,
            False,
            id="429 rate limit",
        ),
        pytest.param("createRecord", 502, {"error": "UpstreamFailure"}, {}, TransientChannelError, True, id="502"),
        pytest.param("createSession", 503, {}, {}, TransientChannelError, False, id="503 before writing"),
        pytest.param("createRecord", 400, {"error": "AccountTakedown"}, {}, PermanentChannelError, False, id="400"),
    ],
)
def test_given_bluesky_answers_an_error_when_publishing_then_it_becomes_the_matching_channel_error(
    bluesky: FakeBluesky,
    to_bluesky: BlueskyPublisher,
    path: str,
    status: int,
    body: dict[str, Any],
    headers: dict[str, str],
    expected: type[ChannelError],
    outcome_unknown: bool,
) -> None:
    reset = str(int((now() + timedelta(seconds=90)).timestamp()))
    bluesky.fail_next(
        1, status, body=body, headers={k: reset if v == "+90 unix" else v for k, v in headers.items()}, path=path
    )

    with pytest.raises(expected) as caught:
        to_bluesky.publish(bluesky_post(bluesky))

    assert f"answered {status}" in caught.value.reason
    assert bluesky.creations == 0
    if isinstance(caught.value, TransientChannelError):
        assert caught.value.outcome_unknown is outcome_unknown
        if headers:
            assert caught.value.retry_after is not None
            assert abs(caught.value.retry_after - timedelta(seconds=90)) <= timedelta(seconds=2)


def test_given_text_bluesky_rejects_when_publishing_then_the_error_is_permanent_and_says_why(
    bluesky: FakeBluesky, to_bluesky: BlueskyPublisher
) -> None:
    with pytest.raises(PermanentChannelError, match="must not be longer than 300 graphemes"):
        to_bluesky.publish(bluesky_post(bluesky, "y" * 301))


def test_given_bluesky_wrote_the_record_but_answered_too_late_when_publishing_then_find_returns_it(
    bluesky: FakeBluesky, to_bluesky: BlueskyPublisher
) -> None:
    share = bluesky_post(bluesky)
    bluesky.hang_next = HANG

    with pytest.raises(TransientChannelError) as caught:
        to_bluesky.publish(share)
    found = to_bluesky.find(share)

    assert caught.value.outcome_unknown is True
    assert found is not None
    assert found.external_id == f"at://{DID}/app.bsky.feed.post/{record_key(share)}"
    assert bluesky.creations == 1


def test_given_no_record_at_the_key_when_find_runs_then_nothing_is_found(
    bluesky: FakeBluesky, to_bluesky: BlueskyPublisher
) -> None:
    assert to_bluesky.find(bluesky_post(bluesky)) is None
