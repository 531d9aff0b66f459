"""The migrations: one head (equal to ``migrations.HEAD``, which roles compare against
without loading Alembic), a clean upgrade from an empty database, and downgrade and back."""

from __future__ import annotations

from alembic import command
from alembic.script import ScriptDirectory

import migrations
from followthrough import schema
from tests.support.database import connect

TABLES = ("events", "schedule", "accounts", "rm_shares", "rm_response_tasks")


def tables(url: str) -> set[str]:
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


def revision(url: str) -> str | None:
    with connect(url) as conn:
        if conn.execute("SELECT to_regclass('alembic_version')").fetchone() == (None,):
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return None if row is None else str(row[0])


def test_there_is_one_head_and_it_is_the_one_roles_wait_for(empty_database_url: str) -> None:
    # Given the migration scripts
    script = ScriptDirectory.from_config(schema.alembic_config(empty_database_url))
    # When Alembic lists its heads
    heads = script.get_heads()
    # Then there is exactly one, and migrations.HEAD names it
    assert heads == [migrations.HEAD]


def test_an_empty_database_upgrades_to_head_and_is_current(empty_database_url: str) -> None:
    # Given a database with no schema
    assert not schema.is_current(empty_database_url)
    # When it is migrated
    schema.migrate(empty_database_url)
    # Then it is at head, with the log, the schedule and the read models
    assert revision(empty_database_url) == migrations.HEAD
    assert schema.is_current(empty_database_url)
    assert set(TABLES) <= tables(empty_database_url)


def test_every_revision_downgrades_to_empty_and_upgrades_back(empty_database_url: str) -> None:
    # Given a database at head
    schema.migrate(empty_database_url)
    cfg = schema.alembic_config(empty_database_url)
    # When it is downgraded one revision at a time down to nothing
    script = ScriptDirectory.from_config(cfg)
    steps = [rev.revision for rev in script.walk_revisions()]  # head first
    for i, _ in enumerate(steps):
        command.downgrade(cfg, "-1")
        expected = steps[i + 1] if i + 1 < len(steps) else None
        assert revision(empty_database_url) == expected
    # Then none of our tables is left, and it upgrades back to a current schema
    assert not set(TABLES) & tables(empty_database_url)
    schema.migrate(empty_database_url)
    assert schema.is_current(empty_database_url)
    assert set(TABLES) <= tables(empty_database_url)
