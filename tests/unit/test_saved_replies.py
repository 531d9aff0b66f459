"""Saved replies' pure rules: the placeholders known, refused when unknown, and filled once."""

from __future__ import annotations

import pytest

from scheduler.domain.saved_replies import author_of, check_name, check_text, fill
from scheduler.errors import InvalidInputError


def test_known_placeholders_are_filled_once_and_other_braces_kept() -> None:
    values = {"author": "{account}", "account": "launch"}
    assert fill("Hi {author}, from {account}. {not a placeholder} {}", values) == (
        "Hi {account}, from launch. {not a placeholder} {}")


@pytest.mark.parametrize("text", ["Hi {name}", "{author} {Account}", "{author_name}"])
def test_an_unknown_placeholder_is_refused_naming_the_text(text: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        check_text(text)
    assert refused.value.field == "text"
    assert "known: {author}, {account}" in refused.value.message


def test_a_name_is_trimmed_and_text_must_hold_something() -> None:
    assert check_name("  thanks ") == "thanks"
    for bad in ("", "   ", "x" * 101):
        with pytest.raises(InvalidInputError):
            check_name(bad)
    with pytest.raises(InvalidInputError):
        check_text("  \n ")
    assert check_text("Thanks {author}!") == "Thanks {author}!"


def test_the_author_is_their_shown_name_else_their_handle() -> None:
    assert author_of("ana@example.social", "Ana Lima") == "Ana Lima"
    assert author_of("ana@example.social", "  ") == "ana@example.social"
    assert author_of("bo", None) == "bo"
