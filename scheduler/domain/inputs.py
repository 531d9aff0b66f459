"""Rules every piece of text and JSON a client sends must meet, before anything stores it.

PostgreSQL refuses a NUL character in ``text`` and ``jsonb``, and a lone UTF-16 surrogate
(``"\\ud800"``, legal in JSON, not in UTF-8) cannot be encoded at all; both are refused
here with the field named, so they never reach a hash or a statement.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from scheduler.errors import InvalidInputError

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Keys whose values are credentials: refused in account config at any depth.
SECRET_KEY = re.compile(
    r"(token|secret|passw(or)?d|passphrase|credential|api[-_]?key|private[-_]?key|client[-_]?key|"
    r"authorization|bearer|cookie)",
    re.I,
)
# ... unless the key names where the secret lives instead (``access_token_env``).
SECRET_REFERENCE = re.compile(r"_(env|file|ref)$", re.I)

CONFIG_MAX_BYTES = 16 * 1024
CONFIG_MAX_DEPTH = 8
CONFIG_MAX_STRING = 2000
CONFIG_MAX_KEY = 100
MAX_PERSON = 200


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored, or None."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "must not contain NUL characters (\\u0000)"
    return "must not contain unpaired UTF-16 surrogates (e.g. \\ud800)"


def check_person(name: str, *, field: str = "owner") -> str:
    """A person's name (a token's owner, a reply's assignee), as owners of response steps
    are named: trimmed, 1-200 characters, no control characters."""
    name = name.strip()
    if (problem := text_problem(name)) is not None:
        raise InvalidInputError(field, problem)
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise InvalidInputError(field, "must not contain control characters (a name is shown to people)")
    if not name or len(name) > MAX_PERSON:
        raise InvalidInputError(field, f"must name a person (1-{MAX_PERSON} characters)")
    return name


def check_text(field: str, value: str, *, max_length: int) -> None:
    problem = text_problem(value)
    if problem is not None:
        raise InvalidInputError(field, problem)
    if len(value) > max_length:
        raise InvalidInputError(field, f"must be at most {max_length} characters")


def is_secret_key(key: str) -> bool:
    return SECRET_KEY.search(key) is not None and SECRET_REFERENCE.search(key) is None


def check_json(field: str, value: Any, *, depth: int = 0) -> int:
    """Walk a client's JSON value: storable strings, bounded depth, no secrets by key.

    Returns a rough size in bytes so that the caller can bound the whole document.
    """
    if depth > CONFIG_MAX_DEPTH:
        raise InvalidInputError(field, f"nests deeper than {CONFIG_MAX_DEPTH} levels")
    if isinstance(value, str):
        check_text(field, value, max_length=CONFIG_MAX_STRING)
        return len(value) + 2
    if isinstance(value, Mapping):
        size = 2
        for key, item in value.items():
            name = f"{field}.{key}" if text_problem(str(key)) is None else f"{field}.<key>"
            check_text(name, str(key), max_length=CONFIG_MAX_KEY)
            if is_secret_key(str(key)) and not isinstance(item, bool):
                raise InvalidInputError(
                    name,
                    "credentials are not stored: put the secret in an environment variable of the "
                    f"workers and give its name as {key}_env",
                )
            size += len(str(key)) + 3 + check_json(name, item, depth=depth + 1)
        return size
    if isinstance(value, list):
        return 2 + sum(check_json(f"{field}.{i}", item, depth=depth + 1) for i, item in enumerate(value))
    return 8


def check_config(config: Mapping[str, Any], *, field: str = "config") -> None:
    if check_json(field, config) > CONFIG_MAX_BYTES:
        raise InvalidInputError(field, f"must be at most {CONFIG_MAX_BYTES // 1024} KiB of JSON")


def without_secrets(value: Any) -> Any:
    """A config as readers see it: values under secret-looking keys replaced."""
    if isinstance(value, Mapping):
        return {k: "[redacted]" if is_secret_key(str(k)) else without_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_secrets(v) for v in value]
    return value
