"""What a channel error says about a failed answer, from the answer alone (no network)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.channels import PermanentChannelError, TransientChannelError
from workers.channels.http import ChannelHttp, readable_body
from workers.channels.mastodon import instance_text_limit

SECRET = "s3cret-token-abcdefghijklmnop"
FAST = settings(max_examples=100, deadline=None, database=None)


def channel(secret_key: str = "access_token_env") -> ChannelHttp:
    return ChannelHttp(httpx.Client(), "mastodon", (SECRET,), secret_key)


def text_answer(status: int, body: str, kind: str = "text/plain") -> httpx.Response:
    return httpx.Response(status, text=body, headers={"content-type": kind})


def test_a_plain_text_refusal_of_the_token_says_what_the_server_said_and_which_secret_to_check() -> None:
    # Given a server answering 400 "Invalid Bearer token" as plain text
    error = channel().failure(text_answer(400, "Invalid Bearer token\n"))

    # Then the error is permanent and reads as one line with the advice
    assert isinstance(error, PermanentChannelError)
    assert error.reason == (
        "mastodon answered 400: Invalid Bearer token "
        "(check the account's secret: the environment variable named by access_token_env)"
    )


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        pytest.param(
            422, {"error": "Validation failed: Text can't be blank"},
            "mastodon answered 422: Validation failed: Text can't be blank", id="Mastodon JSON error",
        ),
        pytest.param(
            400, {"error": "InvalidRequest", "message": "Invalid record key"},
            "mastodon answered 400: InvalidRequest: Invalid record key", id="XRPC JSON error",
        ),
        pytest.param(400, {"errors": ["x"]}, "mastodon answered 400", id="JSON without error fields"),
        pytest.param(
            403, {"error": "This action is not allowed"},
            "mastodon answered 403: This action is not allowed (check the account's secret: the environment "
            "variable named by access_token_env and its scopes)", id="403 names the secret and its scopes",
        ),
    ],
)
def test_json_errors_keep_their_fields_and_only_refused_credentials_get_advice(
    status: int, body: dict[str, Any], reason: str
) -> None:
    # When a JSON error answer becomes a channel error
    error = channel().failure(httpx.Response(status, json=body))

    # Then its reason is the status and the network's own words
    assert error.reason == reason


def test_an_html_error_page_becomes_its_text_and_a_5xx_stays_transient() -> None:
    # Given a proxy's error page
    page = "<!DOCTYPE html><html><head><title>Bad   gateway</title><script>var x = '<p>';</script></head>" \
           "<body><h1>Error 502</h1><p>Try again &amp; again.</p></body></html>"

    # When it becomes a channel error for a request that may have published
    error = channel().failure(text_answer(502, page, "text/html"), may_publish=True)

    # Then the reason holds the page's words only
    assert isinstance(error, TransientChannelError)
    assert error.reason == "mastodon answered 502: Bad gateway Error 502 Try again & again."
    assert error.outcome_unknown is True


@FAST
@given(prefix=st.integers(min_value=0, max_value=400))
def test_a_secret_in_a_long_body_is_redacted_before_the_body_is_cut(prefix: int) -> None:
    # Given a long plain-text body that repeats the secret at any position
    body = "x" * prefix + " " + SECRET + " " + "y" * 400

    # When it becomes a reason
    reason = channel().failure(text_answer(500, body)).reason

    # Then no part of the secret shows, wherever the cut falls
    assert SECRET[:6] not in reason
    assert len(reason) <= len("mastodon answered 500: ") + 200


def test_a_success_that_is_not_json_says_what_came_instead() -> None:
    # Given a captive portal answering 200 with a page
    with pytest.raises(TransientChannelError) as caught:
        channel().answer(text_answer(200, "<html><title>Sign in to the Wi-Fi</title></html>", "text/html"))

    # Then the reason shows the page's words
    assert caught.value.reason == "mastodon: unexpected answer, its answer is not JSON: Sign in to the Wi-Fi"


def test_readable_body_leaves_plain_text_with_angle_brackets_alone() -> None:
    assert readable_body("a < b  and\n c > d") == "a < b and c > d"


@pytest.mark.parametrize(
    ("body", "limit"),
    [
        pytest.param(
            {"configuration": {"statuses": {"max_characters": 1000, "characters_reserved_per_url": 30}}},
            (1000, 30), id="Mastodon v2 or v1",
        ),
        pytest.param({"max_toot_chars": 5000}, (5000, None), id="Pleroma v1: a URL counts in full"),
        pytest.param({"configuration": {"statuses": {"max_characters": 800}}}, (800, 23), id="no URL length"),
        pytest.param({"configuration": {"statuses": {"max_characters": "many"}}}, None, id="not a number"),
        pytest.param({"max_toot_chars": True}, None, id="a boolean"),
        pytest.param({"max_toot_chars": 0}, None, id="zero"),
        pytest.param({"domain": "example.social"}, None, id="no limit"),
        pytest.param(["not", "an", "object"], None, id="not an object"),
    ],
)
def test_an_instances_text_limit_is_read_from_what_it_describes(
    body: Any, limit: tuple[int, int | None] | None
) -> None:
    assert instance_text_limit(body) == limit
