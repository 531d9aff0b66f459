"""The structlog processor that keeps secrets out of log lines."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from followthrough.logs import REDACTED, redact_secrets

FAST = settings(max_examples=150, deadline=None, database=None)


def _redact(**event_dict: Any) -> dict[str, Any]:
    return dict(redact_secrets(None, "info", dict(event_dict)))


@pytest.mark.parametrize(
    "key",
    [
        "token",
        "access_token",
        "refresh_token",
        "api_key",
        "password",
        "db_password",
        "passwd",
        "Authorization",
        "client_secret",
        "private_key",
        "credentials",
        "APP_PASSWORD",
    ],
)
def test_the_value_of_a_secret_looking_key_is_redacted(key: str) -> None:
    # Given a log line carrying a secret under a secret-looking key
    # When the processor runs
    line = _redact(event="account_connected", **{key: "s3cr3t-value"})
    # Then the value is gone and the event name is kept
    assert line == {"event": "account_connected", key: REDACTED}


def test_ordinary_fields_are_left_alone() -> None:
    # Given a worker's canonical log line
    line = {
        "event": "share_sent",
        "share_id": "abc",
        "attempt": 2,
        "url": "https://m.social/@team/1",
        "lateness_ms": 12,
        "reconciled": None,
        "text": "Our release",
    }
    # When the processor runs
    # Then nothing changes
    assert _redact(**line) == line


def test_secrets_inside_nested_mappings_and_lists_are_redacted() -> None:
    # Given request headers and a list of accounts with credentials
    line = _redact(
        event="http_request",
        headers={"Authorization": "Bearer abc", "Accept": "application/json"},
        accounts=[{"name": "team", "config": {"access_token": "tok", "instance": "m.social"}}],
    )
    # Then the secret values are redacted at any depth and the rest is kept
    assert line["headers"] == {"Authorization": REDACTED, "Accept": "application/json"}
    assert line["accounts"] == [{"name": "team", "config": {"access_token": REDACTED, "instance": "m.social"}}]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://app:hunter2@db:5432/ft", f"postgresql://app:{REDACTED}@db:5432/ft"),
        ("redis://:hunter2@cache:6379/0", f"redis://:{REDACTED}@cache:6379/0"),
        ("amqp://guest:guest@127.0.0.1:5672/%2F", f"amqp://guest:{REDACTED}@127.0.0.1:5672/%2F"),
    ],
)
def test_a_password_inside_a_url_is_redacted_and_the_rest_kept(url: str, expected: str) -> None:
    # Given a connection URL with a password, in a field and inside the message
    # When the processor runs
    line = _redact(event=f"connecting to {url}", database_url=url)
    # Then only the password is replaced
    assert line["database_url"] == expected
    assert line["event"] == f"connecting to {expected}"


@pytest.mark.parametrize(
    "url", ["https://mastodon.social/@team/1099", "postgresql://app@db/ft", "https://example.com/a:b@c"]
)
def test_a_url_without_a_password_is_left_alone(url: str) -> None:
    # Given URLs with an @ but no user:password part
    # When the processor runs
    # Then they are unchanged
    assert _redact(event="x", url=url)["url"] == url


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_a_bearer_token_inside_text_is_redacted(scheme: str) -> None:
    # Given a header line logged as text
    # When the processor runs
    line = _redact(event="request", header=f"Authorization: {scheme} eyJhbGciOi.J9-eyJzdWIi_Oi/8=")
    # Then the token is gone and the scheme kept
    assert line["header"] == f"Authorization: {scheme} {REDACTED}"


def test_values_that_are_not_text_pass_through() -> None:
    # Given numbers, booleans and None
    # When the processor runs
    # Then they are unchanged
    assert _redact(event="x", count=3, ok=True, nothing=None, ratio=0.5) == {
        "event": "x",
        "count": 3,
        "ok": True,
        "nothing": None,
        "ratio": 0.5,
    }


def test_a_token_in_a_url_query_string_is_redacted() -> None:
    # Given a URL carrying its token as a query parameter
    line = _redact(event="x", url="wss://m.social/api/v1/streaming?stream=user&access_token=SECRET123")
    # When the processor runs
    # Then the token does not appear
    assert "SECRET123" not in line["url"]


@pytest.mark.parametrize("header", ["X-Api-Key", "api-key", "apikey"])
def test_an_api_key_header_is_redacted_whatever_its_spelling(header: str) -> None:
    # Given an API key under a common header spelling
    line = _redact(event="x", headers={header: "SECRET123"})
    # When the processor runs
    # Then the key does not appear
    assert line["headers"][header] == REDACTED


secret_keys = st.sampled_from(["token", "password", "Authorization", "client_secret", "api_key"])
plain_keys = st.sampled_from(["share_id", "text", "attempt", "headers", "config", "items"])
leaves = st.one_of(st.integers(), st.none(), st.text(alphabet="abc xyz", max_size=10))


def _nested(secret: str) -> st.SearchStrategy[Any]:
    planted = st.dictionaries(secret_keys, st.just(secret), min_size=1, max_size=1)
    return st.recursive(
        planted | leaves,
        lambda children: st.lists(children, max_size=3) | st.dictionaries(plain_keys, children, max_size=3),
        max_leaves=8,
    )


@FAST
@given(data=st.data())
def test_a_secret_under_a_secret_key_never_reaches_the_output_at_any_depth(data: st.DataObject) -> None:
    # Given a secret planted under secret-looking keys anywhere in nested values
    secret = "Zq9-SECRET-VALUE"
    value = data.draw(_nested(secret), label="value")
    # When the processor runs
    line = _redact(event="x", payload=value)
    # Then the secret is nowhere in the output, and running again changes nothing
    assert secret not in repr(line)
    assert _redact(**line) == line
