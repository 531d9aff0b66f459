"""Running plain SQL from a revision.

The text goes to psycopg as is, without parameters, so a revision can hold several
statements, dollar-quoted functions and ``%`` signs (plpgsql's RAISE placeholders).
It runs on the same connection and transaction as the rest of the migration.
"""

from __future__ import annotations

from typing import Any

from alembic import op


def run(sql: str) -> None:
    driver: Any = op.get_bind().connection.driver_connection
    driver.execute(sql)
