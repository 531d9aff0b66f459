"""Accounts: a workspace's presence on a channel, with its settings.

Credentials are never stored here: the config names environment variables
(``access_token_env``) that the workers read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import psycopg
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb

from events import sqlfiles
from events.catalogue import ResponseStep
from scheduler.domain import approval, inputs, slots
from scheduler.domain.limits import CHANNELS
from scheduler.domain.plans import StepInput, validate_plan
from scheduler.domain.replies import cadence_from_config
from scheduler.errors import ConflictError, InvalidInputError, NotFoundError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Account:
    id: UUID
    workspace_id: str
    name: str
    channel: str
    config: Mapping[str, Any]
    default_response_plan: tuple[ResponseStep, ...] | None
    late_policy: str
    max_lateness_seconds: int | None
    created_at: datetime


Q = sqlfiles.load("scheduler.services", "accounts.sql")


def _from_row(row: Sequence[Any]) -> Account:
    plan = row[5]
    return Account(
        id=row[0],
        workspace_id=row[1],
        name=row[2],
        channel=row[3],
        config=row[4],
        default_response_plan=None if plan is None else tuple(ResponseStep.model_validate(s) for s in plan),
        late_policy=row[6],
        max_lateness_seconds=row[7],
        created_at=row[8],
    )


# Options of the exactly-once machinery, kept in the account's config beside the channel's.
UNKNOWN_OUTCOME_CHOICES = ("hold", "resend")


def validate_config(config: Mapping[str, Any]) -> None:
    """Storable, bounded, and free of credentials at any depth (``inputs.check_config``)."""
    inputs.check_config(config)
    if config.get("on_unknown_outcome", "hold") not in UNKNOWN_OUTCOME_CHOICES:
        raise InvalidInputError(
            "config.on_unknown_outcome",
            "must be hold (a person settles a share whose post cannot be looked for) or resend (post again)",
        )
    if not isinstance(config.get("remove_duplicates", False), bool):
        raise InvalidInputError("config.remove_duplicates", "must be true or false")
    cadence_from_config(config)  # the replies' cadence and budget (scheduler.domain.replies)
    slots.from_config(config)  # queue slots, when given (scheduler.domain.slots)
    approval.from_config(config)  # approval before publishing, when given (scheduler.domain.approval)


def create(
    conn: psycopg.Connection[Any],
    *,
    workspace_id: str,
    name: str,
    channel: str,
    config: Mapping[str, Any],
    default_response_plan: Sequence[StepInput] | None,
    late_policy: str,
    max_lateness_seconds: int | None,
) -> Account:
    if not NAME.match(name):
        raise InvalidInputError(
            "name", "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    if channel not in CHANNELS:
        raise InvalidInputError("channel", f"must be one of {', '.join(CHANNELS)}")
    validate_config(config)
    plan = None
    if default_response_plan:
        plan = validate_plan(default_response_plan, field="default_response_plan")
    if late_policy not in ("send", "hold"):
        raise InvalidInputError("late_policy", "must be send or hold")
    if late_policy == "hold" and max_lateness_seconds is None:
        raise InvalidInputError("max_lateness", "is required when late_policy is hold")
    account_id = uuid4()
    try:
        row = conn.execute(
            Q["insert"],
            {
                "id": account_id,
                "workspace_id": workspace_id,
                "name": name,
                "channel": channel,
                "config": Jsonb(dict(config)),
                "plan": None if plan is None else Jsonb([s.model_dump() for s in plan]),
                "late_policy": late_policy,
                "max_lateness_seconds": max_lateness_seconds,
            },
        ).fetchone()
    except pg_errors.UniqueViolation as exc:
        raise ConflictError(f"an account named {name!r} exists in this workspace", field="name") from exc
    assert row is not None
    return _from_row(row)


def get(conn: psycopg.Connection[Any], workspace_id: str, account_id: UUID, *, field: str = "account_id") -> Account:
    row = conn.execute(Q["get"], {"id": account_id, "workspace_id": workspace_id}).fetchone()
    if row is None:
        raise InvalidInputError(field, f"no account {account_id} in this workspace")
    return _from_row(row)


def config_of(conn: psycopg.Connection[Any], account_id: UUID) -> dict[str, Any]:
    """The account's channel config ({} for an account that is gone)."""
    row = conn.execute(Q["config"], {"id": account_id}).fetchone()
    return dict(row[0]) if row else {}


def get_or_404(conn: psycopg.Connection[Any], workspace_id: str, account_id: UUID) -> Account:
    try:
        return get(conn, workspace_id, account_id)
    except InvalidInputError:
        raise NotFoundError("account", str(account_id)) from None


def list_all(conn: psycopg.Connection[Any], workspace_id: str) -> list[Account]:
    return list_all_later(conn, workspace_id)()


def list_all_later(conn: psycopg.Connection[Any], workspace_id: str) -> Callable[[], list[Account]]:
    """``list_all`` sent now, read when called (in a pipeline: with other reads in one round trip)."""
    cur = conn.execute(Q["list"], {"workspace_id": workspace_id})
    return lambda: [_from_row(r) for r in cur.fetchall()]
