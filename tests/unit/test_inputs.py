"""The rules every client string and JSON value must meet (scheduler.domain.inputs)."""

from __future__ import annotations

import pytest

from scheduler.domain import inputs
from scheduler.errors import InvalidInputError


@pytest.mark.parametrize(("value", "problem"), [
    ("fine text, émoji 🎉", None),
    ("a\x00b", "NUL"),
    ("a\ud800b", "surrogate"),
    ("\udfff", "surrogate"),
])
def test_text_that_cannot_be_stored_is_named(value: str, problem: str | None) -> None:
    found = inputs.text_problem(value)
    assert (found is None) if problem is None else (problem in (found or ""))


@pytest.mark.parametrize(("config", "field"), [
    ({"api_key": "x"}, "config.api_key"),
    ({"auth": {"token": "x"}}, "config.auth.token"),
    ({"hooks": [{"client_secret": "x"}]}, "config.hooks.0.client_secret"),
    ({"Private-Key": "x"}, "config.Private-Key"),
    ({"db": {"password": "x"}}, "config.db.password"),
    ({"x": "\x00"}, "config.x"),
])
def test_secrets_and_unstorable_values_are_refused_at_any_depth(config: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        inputs.check_config(config)
    assert refused.value.field == field


def test_names_of_where_a_secret_lives_are_allowed() -> None:
    inputs.check_config({"access_token_env": "MASTODON_TOKEN", "app_password_env": "BSKY", "visibility": "public",
                         "nested": {"token_file": "/run/secrets/t"}, "use_token": True})


def test_a_config_too_large_or_too_deep_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="KiB"):
        inputs.check_config({f"k{i}": "v" * 1000 for i in range(20)})
    deep: dict[str, object] = {}
    node = deep
    for _ in range(12):
        node["a"] = {}
        node = node["a"]  # type: ignore[assignment]
    with pytest.raises(InvalidInputError, match="deeper"):
        inputs.check_config(deep)


def test_readers_see_config_without_secret_looking_values() -> None:
    shown = inputs.without_secrets({"auth": {"token": "s"}, "list": [{"password": "p"}], "access_token_env": "E",
                                    "visibility": "public"})
    assert shown == {"auth": {"token": "[redacted]"}, "list": [{"password": "[redacted]"}],
                     "access_token_env": "E", "visibility": "public"}
