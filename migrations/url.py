"""SQLAlchemy wants a driver name in the URL; the rest of Followthrough uses plain libpq URLs."""

from __future__ import annotations


def sqlalchemy_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
