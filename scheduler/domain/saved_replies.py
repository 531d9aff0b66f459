"""Saved replies: a workspace's ready answers, with placeholders filled for the reply they
answer. A placeholder is ``{word}``; the known ones are ``{author}`` (the reply's author:
the name they show, else their handle) and ``{account}`` (the name of the account that
posted the share). Any other ``{word}`` is refused when the reply is saved, so a typo never
reaches a reader; braces around anything else are text."""

from __future__ import annotations

import re
from collections.abc import Mapping

from scheduler.domain.inputs import text_problem
from scheduler.errors import InvalidInputError

PLACEHOLDERS = ("author", "account")
MAX_NAME = 100
MAX_TEXT = 5000
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def check_name(name: str) -> str:
    """A saved reply's name, trimmed: 1-100 characters."""
    name = name.strip()
    if (problem := text_problem(name)) is not None:
        raise InvalidInputError("name", problem)
    if not name or len(name) > MAX_NAME:
        raise InvalidInputError("name", f"must name the saved reply (1-{MAX_NAME} characters)")
    return name


def check_text(text: str) -> str:
    """A saved reply's text: not empty, at most 5000 characters, only known placeholders."""
    if (problem := text_problem(text)) is not None:
        raise InvalidInputError("text", problem)
    if not text.strip() or len(text) > MAX_TEXT:
        raise InvalidInputError("text", f"must hold the answer (1-{MAX_TEXT} characters)")
    unknown = sorted({m.group(1) for m in _PLACEHOLDER.finditer(text)} - set(PLACEHOLDERS))
    if unknown:
        raise InvalidInputError("text", f"has unknown placeholder{'s' if len(unknown) > 1 else ''} "
                                        f"{', '.join('{' + u + '}' for u in unknown)}; "
                                        f"known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}")
    return text


def author_of(author: str, author_name: str | None) -> str:
    """What ``{author}`` becomes: the name the author shows, else their handle."""
    return (author_name or "").strip() or author


def fill(text: str, values: Mapping[str, str]) -> str:
    """The text with each known placeholder replaced (in one pass: a value holding
    ``{account}`` is not filled again)."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)
