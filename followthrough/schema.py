"""The database schema: apply the migrations (``followthrough migrate``, a Kubernetes Job,
or ``up``), and make every other role wait until it is current rather than migrate itself."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg
import structlog

import migrations
from scheduler.errors import ConfigurationError

log = structlog.get_logger("followthrough")


def alembic_config(url: str) -> Any:
    from alembic.config import Config  # Alembic loads only where migrations run

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    cfg.attributes["database_url"] = url
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def is_current(url: str) -> bool:
    with psycopg.connect(url, connect_timeout=5) as conn:
        exists = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return False
        versions = {row[0] for row in conn.execute("SELECT version_num FROM alembic_version")}
    return versions == {migrations.HEAD}


def wait_until_current(url: str, *, timeout: float = 120.0) -> None:
    """Wait for `followthrough migrate`; the error says what to do when it never comes."""
    deadline = time.monotonic() + timeout
    announced = False
    while True:
        try:
            if is_current(url):
                return
            reason = "the database schema is not at the latest revision"
            fix = "run `followthrough migrate` against this database"
        except psycopg.Error as exc:
            reason = f"cannot reach the database ({exc.__class__.__name__}: {str(exc).strip()[:200]})"
            fix = "check DATABASE_URL and that the server is up"
        if time.monotonic() > deadline:
            raise ConfigurationError(f"{reason}: {fix}")
        if not announced:
            log.warning("waiting_for_migrations", reason=reason)
            announced = True
        time.sleep(1.0)
