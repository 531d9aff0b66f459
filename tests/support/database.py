"""Real servers for the tests: databases copied from a migrated template, RabbitMQ queues."""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

IN_CI = bool(os.environ.get("CI"))


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` (works for host URLs and socket URLs)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def connect(url: str, **kwargs: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True, **kwargs)


def fresh_database(admin_url: str, template: str | None) -> str:
    name = f"ft_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if template:
            query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
            conn.execute(query)
        else:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), timeout=2):
            return True
    except OSError:
        return False


def delete_rabbit_queues(url: str, names: list[str]) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for name in names:
            for suffix in ("", ".DQ", ".XQ"):
                channel.queue_delete(queue=name + suffix)
    finally:
        connection.close()
