"""Named SQL blocks kept in ``.sql`` files beside the code that runs them.

A file holds blocks introduced by ``-- name: <name>``; they are loaded once and
typed as ``LiteralString`` so psycopg accepts them as trusted query text.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import LiteralString, cast

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


@cache
def load(package: str, filename: str) -> dict[str, LiteralString]:
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    parts = _NAME.split(text)
    queries: dict[str, LiteralString] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"{filename}: query {name!r} defined twice")
        queries[name] = cast(LiteralString, body.strip())
    return queries
