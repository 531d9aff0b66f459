"""The Mastodon and Bluesky publishers against fake networks served on loopback.

The fakes (``tests/support/fake_mastodon.py``, ``tests/support/fake_bluesky.py``) behave
like the real APIs where the publishers depend on it, and like the worst real servers
when a test turns their knobs: late answers after the work is done, ignored idempotency
keys, hidden followers-only posts, connections dropped after the write, plain-text
errors. No database is needed.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from scheduler.domain.share import idempotency_key
from tests.support.fake_bluesky import APP_PASSWORD, DID, HANDLE, TID, FakeBluesky
from tests.support.fake_mastodon import TOKEN, FakeMastodon
from tests.support.servers import free_port, iso, now, serve
from workers.channels import ChannelError, PermanentChannelError, Post, Published, TransientChannelError
from workers.channels.bluesky import BlueskyPublisher, record_key
from workers.channels.mastodon import MastodonPublisher

READ_TIMEOUT = 0.5
HANG = 1.5  # longer than READ_TIMEOUT: the fake does the work, then answers too late


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


def as_published(status: dict[str, Any]) -> Published:
    """What the publisher should make of a Mastodon status: its id, url and the server's creation time."""
    return Published(
        external_id=status["id"], url=status["url"], created_at=datetime.fromisoformat(status["created_at"])
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
    assert published == as_published(status)


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
    assert found == as_published(status)
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

    assert to_mastodon.find(share) == as_published(ours)


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
        external_id=f"at://{DID}/app.bsky.feed.post/{rkey}",
        url=f"https://bsky.app/profile/{HANDLE}/post/{rkey}",
        created_at=datetime.fromisoformat(bluesky.records[rkey]["value"]["createdAt"]),
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
