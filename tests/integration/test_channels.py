"""The Mastodon and Bluesky publishers against fake networks served on loopback.

The fakes (``tests/support/fake_mastodon.py``, ``tests/support/fake_bluesky.py``) behave
like the real APIs where the publishers depend on it, and like the worst real servers
when a test turns their knobs: late answers after the work is done, ignored idempotency
keys, hidden followers-only posts, connections dropped after the write, plain-text
errors. No database is needed.
"""

from __future__ import annotations

import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from structlog.testing import capture_logs

from followthrough.bootstrap import channel_client
from followthrough.settings import Settings
from scheduler.domain.share import idempotency_key
from tests.support.fake_bluesky import APP_PASSWORD, COLLECTION, DID, HANDLE, TID, FakeBluesky
from tests.support.fake_mastodon import TOKEN, FakeMastodon
from tests.support.servers import free_port, iso, now
from workers.channels import (
    ChannelError,
    PermanentChannelError,
    Post,
    Published,
    SharePost,
    TransientChannelError,
)
from workers.channels.bluesky import BlueskyPublisher, record_key
from workers.channels.console import ConsolePublisher
from workers.channels.mastodon import MastodonPublisher

# The fake networks answer in this process's threads: 0.5 s was missed by a plain answer
# (an HTML error page) on the 2-core machine with 3 xdist workers and other runs beside them.
READ_TIMEOUT = 2.0
HANG = 3.5  # longer than READ_TIMEOUT: the fake does the work, then answers too late


# --- fixtures ------------------------------------------------------------------------


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


def mastodon_post(
    fake: FakeMastodon, text: str = "We launched! https://example.com/launch", *, visibility: str = "public", **kw: Any
) -> Post:
    config = {"base_url": fake.base_url, "access_token_env": "TEAM_MASTODON_TOKEN", "visibility": visibility}
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


def test_given_the_workers_client_then_a_connection_the_server_may_be_closing_is_never_sent_a_post(
    mastodon: FakeMastodon,
) -> None:
    # Given the workers' own client, and a server that closes a connection idle for 5 s
    # (uvicorn's default, as this fake's; Node's, as the Bluesky PDS's): one reused at the
    # moment it closes fails with "server disconnected", an unknown outcome
    with channel_client(Settings()) as client:
        publisher = MastodonPublisher(client, env={"TEAM_MASTODON_TOKEN": TOKEN})
        # When it posts twice a moment apart, then once more after 4.5 s of quiet
        publisher.publish(mastodon_post(mastodon, "one"))
        publisher.publish(mastodon_post(mastodon, "two"))
        time.sleep(4.5)
        publisher.publish(mastodon_post(mastodon, "three"))
    # Then the second post reuses the first's connection, and the third opens one of its own
    ports = [port for request, port in zip(mastodon.requests, mastodon.client_ports, strict=True)
             if request == "POST /api/v1/statuses"]
    assert len(ports) == 3
    assert ports[1] == ports[0]
    assert ports[2] != ports[1]


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


# --- clear errors from any server ----------------------------------------------------


@pytest.mark.parametrize("status", [400, 401])
def test_given_a_server_that_refuses_the_token_in_plain_text_then_the_reason_shows_it_and_says_to_check_the_secret(
    mastodon: FakeMastodon, client: httpx.Client, status: int
) -> None:
    # Given a server that answers a refused token with text/plain, not JSON
    mastodon.knobs.plain_text_errors = True
    mastodon.knobs.auth_error_status = status
    publisher = MastodonPublisher(client, env={"TEAM_MASTODON_TOKEN": "a-revoked-token"})

    # When a share is published with that token
    with pytest.raises(PermanentChannelError) as caught:
        publisher.publish(mastodon_post(mastodon))

    # Then the reason carries the server's words and names the config key of the secret
    assert caught.value.reason.startswith(f"mastodon answered {status}: Invalid Bearer token")
    assert "check the account's secret: the environment variable named by access_token_env" in caught.value.reason
    assert mastodon.creations == 0


def test_given_a_bluesky_password_refused_then_the_reason_says_to_check_the_app_password_variable(
    bluesky: FakeBluesky, client: httpx.Client
) -> None:
    # Given a wrong app password
    publisher = BlueskyPublisher(client, env={"TEAM_BLUESKY_PASSWORD": "wxyz-wxyz-wxyz-wxyz"})

    # When a share is published
    with pytest.raises(PermanentChannelError) as caught:
        publisher.publish(bluesky_post(bluesky))

    # Then the reason names the config key that names the variable
    assert "Invalid identifier or password" in caught.value.reason
    assert "the environment variable named by app_password_env" in caught.value.reason


def test_given_an_html_error_page_then_the_reason_shows_its_text_without_markup_or_the_token(
    mastodon: FakeMastodon, to_mastodon: MastodonPublisher
) -> None:
    # Given a proxy that answers with an HTML page repeating the token
    page = f"<html><head><title>502 Bad Gateway</title><style>h1 {{ color: red }}</style></head>\n<body>" \
           f"<h1>502   Bad Gateway</h1><p>upstream refused Bearer {TOKEN} &amp; gave up</p></body></html>"
    mastodon.fail_next(1, 502, body=page)

    # When a share is published
    with pytest.raises(TransientChannelError) as caught:
        to_mastodon.publish(mastodon_post(mastodon))

    # Then the reason reads as text, whitespace collapsed, the token redacted
    assert caught.value.reason == (
        "mastodon answered 502: 502 Bad Gateway 502 Bad Gateway upstream refused Bearer [redacted] & gave up"
    )
    assert caught.value.outcome_unknown is True


def test_given_a_long_plain_text_error_then_the_reason_shows_only_its_start(
    mastodon: FakeMastodon, to_mastodon: MastodonPublisher
) -> None:
    # Given a server that answers a whole log as its error
    mastodon.fail_next(1, 422, body="line of a stack trace\n" * 100)

    # When a share is published
    with pytest.raises(PermanentChannelError) as caught:
        to_mastodon.publish(mastodon_post(mastodon))

    # Then the reason holds about 200 characters of it, on one line
    detail = caught.value.reason.removeprefix("mastodon answered 422: ")
    assert detail.startswith("line of a stack trace line of a stack trace")
    assert len(detail) == 200
    assert "\n" not in detail


# --- Mastodon: what find can see, creation times, limits, delete ----------------------


@pytest.mark.parametrize(
    ("visibility", "can_find"),
    [("public", True), ("unlisted", True), ("private", False), ("direct", False)],
)
def test_given_an_account_visibility_then_can_find_says_whether_find_can_see_its_posts(
    mastodon: FakeMastodon, to_mastodon: MastodonPublisher, visibility: str, can_find: bool
) -> None:
    # Given a Mastodon account posting with this visibility
    share = mastodon_post(mastodon, visibility=visibility)

    # Then can_find is False exactly where servers may hide its posts
    assert to_mastodon.can_find(share) is can_find


def test_given_a_server_hiding_private_posts_when_find_runs_then_the_post_is_missed_as_can_find_warns(
    mastodon: FakeMastodon, to_mastodon: MastodonPublisher
) -> None:
    # Given a server hiding followers-only posts from the account's listing, and one such post
    mastodon.knobs.hide_non_public = True
    share = mastodon_post(mastodon, visibility="private")
    to_mastodon.publish(share)
    mastodon.forget_idempotency_keys()

    # When find looks for it
    found = to_mastodon.find(share)

    # Then it is not seen though it exists: can_find said so
    assert found is None
    assert [s["visibility"] for s in mastodon.statuses] == ["private"]
    assert to_mastodon.can_find(share) is False


def test_given_a_server_whose_clock_is_ahead_then_created_at_is_the_servers_time_from_publish_and_find(
    mastodon: FakeMastodon, to_mastodon: MastodonPublisher
) -> None:
    # Given a server whose clock runs two minutes ahead of ours
    mastodon.knobs.clock_offset = 120
    share = mastodon_post(mastodon)

    # When a share is published, then found again
    published = to_mastodon.publish(share)
    mastodon.forget_idempotency_keys()
    found = to_mastodon.find(share)

    # Then both report the server's creation time, to the millisecond
    [status] = mastodon.statuses
    assert found is not None
    assert found.created_at == published.created_at == datetime.fromisoformat(status["created_at"])
    assert published.created_at is not None
    assert published.created_at > now() + timedelta(seconds=60)


def test_given_an_instance_describing_its_limits_then_text_limit_reads_them_from_v2_once(
    mastodon: FakeMastodon, to_mastodon: MastodonPublisher
) -> None:
    # Given an instance allowing 1000 characters, URLs counting 30
    mastodon.knobs.max_characters, mastodon.knobs.characters_reserved_per_url = 1000, 30
    config = mastodon_post(mastodon).account_config

    # When the limit is asked for twice
    first, second = to_mastodon.text_limit(config), to_mastodon.text_limit(config)

    # Then it comes from /api/v2/instance, asked once
    assert first == second == (1000, 30)
    assert mastodon.requests == ["GET /api/v2/instance"]


def test_given_an_instance_without_v2_then_text_limit_falls_back_to_v1(
    mastodon: FakeMastodon, to_mastodon: MastodonPublisher
) -> None:
    # Given a Pleroma-like server: no /api/v2/instance, max_toot_chars in v1
    mastodon.knobs.instance_v2 = False
    mastodon.knobs.max_characters = 5000

    # When the limit is asked for
    limit = to_mastodon.text_limit(mastodon_post(mastodon).account_config)

    # Then v1's length counts, and a URL counts in full (as Pleroma counts it)
    assert limit == (5000, None)
    assert mastodon.requests == ["GET /api/v2/instance", "GET /api/v1/instance"]


def test_given_an_instance_that_does_not_answer_then_text_limit_gives_the_defaults_and_asks_again_later(
    mastodon: FakeMastodon, client: httpx.Client
) -> None:
    # Given an instance whose instance endpoints both fail, and a clock we move
    mastodon.knobs.instance_v2 = mastodon.knobs.instance_v1 = False
    clock = [1000.0]
    publisher = MastodonPublisher(client, env={}, monotonic=lambda: clock[0])
    config = mastodon_post(mastodon).account_config

    # When the limit is asked for, again at once, and again two minutes later
    limits = [publisher.text_limit(config), publisher.text_limit(config)]
    clock[0] += 120
    limits.append(publisher.text_limit(config))

    # Then the defaults stand in, and the instance is asked again after a while
    assert limits == [(500, 23)] * 3
    assert mastodon.requests.count("GET /api/v2/instance") == 2


@pytest.mark.parametrize(
    "config",
    [
        pytest.param({"base_url": f"http://127.0.0.1:{free_port()}"}, id="nothing listens"),
        pytest.param({"base_url": "ftp://example.com"}, id="no usable base_url"),
        pytest.param({}, id="no base_url"),
    ],
)
def test_given_an_unreachable_instance_or_bad_config_then_text_limit_gives_the_defaults_without_raising(
    to_mastodon: MastodonPublisher, config: dict[str, Any]
) -> None:
    # When the limit is asked of an instance that cannot answer
    limit = to_mastodon.text_limit(config)

    # Then Mastodon's defaults come back
    assert limit == (500, 23)


def test_given_a_duplicate_on_mastodon_when_it_is_deleted_then_it_is_gone_and_a_second_delete_is_no_error(
    mastodon: FakeMastodon, to_mastodon: MastodonPublisher
) -> None:
    # Given a published share
    share = mastodon_post(mastodon)
    published = to_mastodon.publish(share)
    mastodon.forget_idempotency_keys()

    # When it is deleted, twice
    to_mastodon.delete(share, published.external_id)
    to_mastodon.delete(share, published.external_id)

    # Then the server removed it once and find no longer sees it
    assert mastodon.deletions == 1
    assert mastodon.statuses == []
    assert to_mastodon.find(share) is None


def test_given_someone_elses_status_when_deleting_it_then_the_error_is_permanent(
    mastodon: FakeMastodon, to_mastodon: MastodonPublisher
) -> None:
    # Given a reply by another account
    share = mastodon_post(mastodon)
    ours = to_mastodon.publish(share)
    reply = mastodon.add_reply(ours.external_id, "Congrats!")

    # When it is deleted through our account
    with pytest.raises(PermanentChannelError) as caught:
        to_mastodon.delete(share, reply["id"])

    # Then the server's refusal is reported and the reply stays
    assert caught.value.reason.startswith("mastodon answered 403: This action is not allowed")
    assert mastodon.status(reply["id"]) is not None


# --- the hostile Mastodon's knobs -----------------------------------------------------


def test_given_a_server_ignoring_idempotency_keys_when_a_share_is_published_twice_then_it_holds_two_posts(
    mastodon: FakeMastodon, to_mastodon: MastodonPublisher
) -> None:
    # Given a server that ignores Idempotency-Key
    mastodon.knobs.honour_idempotency_key = False
    share = mastodon_post(mastodon, "Twice, alas")

    # When the same share is published twice
    first, second = to_mastodon.publish(share), to_mastodon.publish(share)

    # Then the server counted two posts of that text
    assert first.external_id != second.external_id
    assert mastodon.counts_by_text() == {"Twice, alas": 2}


def test_given_a_server_that_drops_the_connection_after_the_write_then_the_outcome_is_unknown_and_the_post_exists(
    mastodon: FakeMastodon, to_mastodon: MastodonPublisher
) -> None:
    # Given a server that makes the next post, then drops the connection unanswered
    mastodon.drop_next_after_write()
    share = mastodon_post(mastodon)

    # When the share is published
    with pytest.raises(TransientChannelError) as caught:
        to_mastodon.publish(share)

    # Then the outcome is unknown, the post exists, and find returns it
    assert caught.value.outcome_unknown is True
    assert "connection to mastodon failed" in caught.value.reason
    [status] = mastodon.statuses
    assert to_mastodon.find(share) == as_published(status)
    assert mastodon.creations == 1


def test_given_drop_after_write_every_second_post_then_every_second_publish_has_an_unknown_outcome(
    mastodon: FakeMastodon, to_mastodon: MastodonPublisher
) -> None:
    # Given a server that drops the connection of every second new post
    mastodon.knobs.drop_after_write_every = 2
    outcomes = []

    # When four shares are published
    for n in range(4):
        try:
            to_mastodon.publish(mastodon_post(mastodon, f"share {n}"))
            outcomes.append("sent")
        except TransientChannelError as exc:
            outcomes.append("unknown" if exc.outcome_unknown else "failed")

    # Then the second and fourth were made but not answered
    assert outcomes == ["sent", "unknown", "sent", "unknown"]
    assert mastodon.creations == 4


def test_given_latency_beyond_the_read_timeout_then_the_outcome_is_unknown_and_the_post_landed(
    mastodon: FakeMastodon, to_mastodon: MastodonPublisher
) -> None:
    # Given a server that answers posts later than the client waits
    mastodon.knobs.latency = HANG
    share = mastodon_post(mastodon)

    # When the share is published
    with pytest.raises(TransientChannelError) as caught:
        to_mastodon.publish(share)

    # Then the outcome is unknown though the write landed
    assert caught.value.outcome_unknown is True
    assert mastodon.counts_by_text() == {share.text: 1}


def test_given_latency_on_one_path_when_find_runs_then_its_outcome_stays_unknown(
    mastodon: FakeMastodon, to_mastodon: MastodonPublisher
) -> None:
    # Given a server slow to say who the account is
    mastodon.knobs.latency_by_path = {"/api/v1/accounts/verify_credentials": HANG}

    # When find runs
    with pytest.raises(TransientChannelError) as caught:
        to_mastodon.find(mastodon_post(mastodon))

    # Then the earlier attempt's outcome is still unknown
    assert caught.value.outcome_unknown is True


def test_given_a_server_failing_every_post_at_random_then_429s_made_nothing_and_502s_made_the_post(
    mastodon: FakeMastodon, to_mastodon: MastodonPublisher
) -> None:
    # Given a server answering every post with 429 or 502 (seeded), a 502 after the write
    mastodon.knobs.fault_rate = 1.0
    mastodon.knobs.retry_after = 9
    errors = []

    # When eight shares are published
    for n in range(8):
        with pytest.raises(TransientChannelError) as caught:
            to_mastodon.publish(mastodon_post(mastodon, f"share {n}"))
        errors.append(caught.value)

    # Then rate limits carry Retry-After and made nothing; bad gateways read as text and made the post
    limited = [e for e in errors if "answered 429" in e.reason]
    gateways = [e for e in errors if e.reason == "mastodon answered 502: 502 Bad Gateway 502 Bad Gateway nginx"]
    assert len(limited) + len(gateways) == 8
    assert all(e.retry_after == timedelta(seconds=9) and not e.outcome_unknown for e in limited)
    assert all(e.outcome_unknown for e in gateways)
    assert mastodon.creations == len(gateways)


def test_given_replies_under_a_post_then_the_context_lists_the_thread_depth_first(
    mastodon: FakeMastodon, to_mastodon: MastodonPublisher, client: httpx.Client
) -> None:
    # Given a post, two replies, a reply of ours under the first, and one under that
    root = to_mastodon.publish(mastodon_post(mastodon)).external_id
    first = mastodon.add_reply(root, "Nice!")
    second = mastodon.add_reply(root, "When?", author="bo@example.net")
    answer = mastodon.add_reply(first["id"], "Thanks!", author="team")
    deeper = mastodon.add_reply(answer["id"], "🙂")

    # When the thread is read
    context = client.get(
        f"{mastodon.base_url}/api/v1/statuses/{root}/context", headers={"Authorization": f"Bearer {TOKEN}"}
    ).json()
    above = client.get(
        f"{mastodon.base_url}/api/v1/statuses/{deeper['id']}/context", headers={"Authorization": f"Bearer {TOKEN}"}
    ).json()

    # Then descendants come depth first, ancestors from the root down, with authors and parents
    assert [s["id"] for s in context["descendants"]] == [first["id"], answer["id"], deeper["id"], second["id"]]
    assert [s["id"] for s in above["ancestors"]] == [root, first["id"], answer["id"]]
    assert answer["account"]["acct"] == "team"
    assert answer["in_reply_to_id"] == first["id"]


def test_given_posts_and_deletes_then_the_fakes_stats_endpoint_reports_the_counts(
    mastodon: FakeMastodon, to_mastodon: MastodonPublisher, client: httpx.Client
) -> None:
    # Given two posts of one text (keys ignored), one of them deleted
    mastodon.knobs.honour_idempotency_key = False
    share = mastodon_post(mastodon, "Counted")
    first = to_mastodon.publish(share)
    to_mastodon.publish(share)
    to_mastodon.delete(share, first.external_id)

    # When another process would read the counts
    stats = client.get(f"{mastodon.base_url}/_fake/stats").json()

    # Then they say what the server did
    made = stats.pop("made")
    assert stats == {"posts": 2, "deletes": 1, "live": 1, "by_text": {"Counted": 2}, "uploads": 0}
    assert [m["text"] for m in made] == ["Counted", "Counted"]


def test_given_the_fake_run_as_its_own_process_then_its_flags_set_its_knobs(client: httpx.Client) -> None:
    # Given the fake Mastodon started as a process that ignores idempotency keys
    port = free_port()
    command = [sys.executable, "-m", "tests.support.fake_mastodon", "--port", str(port), "--ignore-idempotency-key"]
    process = subprocess.Popen(command, cwd=Path(__file__).parents[2])
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_up(base_url, process)
        config = {"base_url": base_url, "access_token_env": "TEAM_MASTODON_TOKEN"}
        share = post(config, "From another process")

        # When a share is published twice through it
        publisher = MastodonPublisher(client, env={"TEAM_MASTODON_TOKEN": TOKEN})
        publisher.publish(share)
        publisher.publish(share)

        # Then its stats, read over HTTP, count two posts
        assert client.get(f"{base_url}/_fake/stats").json()["by_text"] == {"From another process": 2}
    finally:
        process.terminate()
        process.wait()


def wait_until_up(base_url: str, process: subprocess.Popen[bytes]) -> None:
    while process.poll() is None:
        try:
            httpx.get(f"{base_url}/_fake/stats")
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"the fake exited with {process.returncode}")


# --- Bluesky: mentions, created_at, delete ----------------------------------------------


def test_given_mentions_in_the_text_then_resolved_handles_become_mention_facets_and_others_stay_text(
    bluesky: FakeBluesky, to_bluesky: BlueskyPublisher
) -> None:
    # Given a text with a known handle after an emoji, an unknown one, and a link
    alice = "did:plc:alice00000000000000000000"
    bluesky.handles["alice.bsky.social"] = alice
    text = "Café ☕ with @alice.bsky.social and @ghost.example.org: https://example.com/x"

    # When it is published
    with capture_logs() as logs:
        to_bluesky.publish(bluesky_post(bluesky, text))

    # Then the known handle is a mention facet at its UTF-8 bytes, the unknown one is logged
    [record] = bluesky.records.values()
    facets = record["value"]["facets"]
    [mention] = [f for f in facets if f["features"][0]["$type"] == "app.bsky.richtext.facet#mention"]
    assert mention["$type"] == "app.bsky.richtext.facet"
    assert mention["features"] == [{"$type": "app.bsky.richtext.facet#mention", "did": alice}]
    index = mention["index"]
    assert text.encode()[index["byteStart"] : index["byteEnd"]] == b"@alice.bsky.social"
    assert [f["index"]["byteStart"] for f in facets] == sorted(f["index"]["byteStart"] for f in facets)
    assert len(facets) == 2
    assert [(e["event"], e["handle"]) for e in logs if e["event"] == "bluesky_mention_unresolved"] == [
        ("bluesky_mention_unresolved", "ghost.example.org")
    ]


def test_given_a_handle_resolved_once_then_later_posts_do_not_ask_again(
    bluesky: FakeBluesky, to_bluesky: BlueskyPublisher
) -> None:
    # Given a known handle
    bluesky.handles["alice.bsky.social"] = "did:plc:alice00000000000000000000"

    # When two posts mention it
    to_bluesky.publish(bluesky_post(bluesky, "Hi @alice.bsky.social"))
    to_bluesky.publish(bluesky_post(bluesky, "Again, @Alice.bsky.social!"))

    # Then it was resolved once
    assert bluesky.requests.count("GET /xrpc/com.atproto.identity.resolveHandle") == 1
    assert all("facets" in r["value"] for r in bluesky.records.values())


def test_given_the_resolver_fails_when_publishing_then_the_error_is_transient_and_nothing_was_posted(
    bluesky: FakeBluesky, to_bluesky: BlueskyPublisher
) -> None:
    # Given a service whose handle resolution is down
    bluesky.fail_next(1, 503, path="resolveHandle")

    # When a post with a mention is published
    with pytest.raises(TransientChannelError) as caught:
        to_bluesky.publish(bluesky_post(bluesky, "Hi @alice.bsky.social"))

    # Then it can be retried, and nothing was written
    assert caught.value.outcome_unknown is False
    assert bluesky.creations == 0


def test_given_a_bluesky_post_then_publish_and_find_report_the_created_at_written_in_the_record(
    bluesky: FakeBluesky, client: httpx.Client
) -> None:
    # Given a publisher whose clock says nine o'clock
    nine = datetime(2026, 3, 1, 9, 0, 0, 123456, tzinfo=UTC)
    publisher = BlueskyPublisher(client, env={"TEAM_BLUESKY_PASSWORD": APP_PASSWORD}, clock=lambda: nine)
    share = bluesky_post(bluesky)

    # When the share is published and found
    published, found = publisher.publish(share), publisher.find(share)

    # Then both carry the record's createdAt (milliseconds, as written)
    assert published.created_at == nine.replace(microsecond=123000)
    assert found == published


def test_given_a_duplicate_on_bluesky_when_it_is_deleted_then_the_record_is_gone_and_a_second_delete_is_no_error(
    bluesky: FakeBluesky, to_bluesky: BlueskyPublisher
) -> None:
    # Given a published share
    share = bluesky_post(bluesky)
    published = to_bluesky.publish(share)

    # When it is deleted, twice
    to_bluesky.delete(share, published.external_id)
    to_bluesky.delete(share, published.external_id)

    # Then the record is gone, deleted once, and find no longer sees it
    assert bluesky.records == {}
    assert bluesky.deletions == 1
    assert to_bluesky.find(share) is None


def test_given_a_record_of_another_repo_or_collection_when_deleting_then_the_error_is_permanent_and_nothing_is_sent(
    bluesky: FakeBluesky, to_bluesky: BlueskyPublisher
) -> None:
    share = bluesky_post(bluesky)
    for foreign in (f"at://did:plc:someoneelse/{COLLECTION}/3kabc", f"at://{DID}/app.bsky.feed.like/3kabc"):
        # When a record that is not one of the account's posts is deleted
        with pytest.raises(PermanentChannelError, match="is not a post of account"):
            to_bluesky.delete(share, foreign)

    # Then no deleteRecord was sent
    assert "POST /xrpc/com.atproto.repo.deleteRecord" not in bluesky.requests


# --- console: removal lines -------------------------------------------------------------


def test_given_a_console_post_deleted_by_another_process_then_find_no_longer_sees_it_and_the_file_keeps_both_lines(
    tmp_path: Path,
) -> None:
    # Given a share published by one publisher (one process) and found there
    here, there = ConsolePublisher(tmp_path), ConsolePublisher(tmp_path)
    share = post({}, "On the console")
    published = here.publish(share)
    assert here.find(share) == published

    # When another publisher deletes it
    there.delete(share, published.external_id)

    # Then the first no longer finds it, and the file holds the post and its removal
    assert here.find(share) is None
    assert [sorted(line) for line in here.lines_for("default", "team")] == [
        ["account", "attempt", "published_at", "scheduled_at", "share_id", "text", "workspace_id"],
        ["account", "removed", "removed_at"],
    ]


def test_given_a_console_post_then_find_in_another_process_reports_the_same_creation_time(tmp_path: Path) -> None:
    # Given a share published by one publisher
    share = post({}, "On the console")
    published = ConsolePublisher(tmp_path).publish(share)

    # When another finds it
    found = ConsolePublisher(tmp_path).find(share)

    # Then it reads the creation time from the file
    assert found == published
    assert published.created_at is not None


def test_given_a_reply_whose_handle_no_longer_verifies_when_the_thread_is_read_then_its_author_is_the_did(
    bluesky: FakeBluesky, to_bluesky: BlueskyPublisher
) -> None:
    # Given a published share and a reply by an account the AppView shows as "handle.invalid"
    share = bluesky_post(bluesky, "Tell us what you think")
    published = to_bluesky.publish(share)
    reply = bluesky.add_reply(published.external_id, "Lost my domain, still here", handle="gone.example.com")
    reply_did = reply["uri"].split("/")[2]
    bluesky.handle_of[reply_did] = "handle.invalid"
    # When the thread is read
    [found] = to_bluesky.read_thread(SharePost(
        share_id=share.share_id, workspace_id=share.workspace_id, account_name=share.account_name,
        account_config=share.account_config, external_id=published.external_id, url=published.url,
        sent_at=published.created_at or now()))
    # Then the reply's author and url name the account by its DID, which still resolves
    assert found.author == reply_did
    assert found.url == f"https://bsky.app/profile/{reply_did}/post/{reply['uri'].rsplit('/', 1)[-1]}"
    assert found.text == "Lost my domain, still here"
