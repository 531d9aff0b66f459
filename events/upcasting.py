"""Upcasting: old schema versions of stored events are converted on read, never rewritten.

Each upcaster turns the data of ``(type, version n)`` into that of version n+1;
reading applies them in a chain up to the class's current version.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from events.catalogue import event_class
from events.errors import UnknownEventTypeError

Data = dict[str, Any]
Upcaster = Callable[[Data], Data]

UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def upcaster(type_name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register a function converting ``type_name`` data from ``from_version`` to the next."""

    def register(fn: Upcaster) -> Upcaster:
        key = (type_name, from_version)
        if key in UPCASTERS:
            raise TypeError(f"two upcasters for {type_name} v{from_version}")
        UPCASTERS[key] = fn
        return fn

    return register


def upcast(type_name: str, schema_version: int, data: Data) -> Data:
    """Bring ``data`` stored at ``schema_version`` to the current version of its type."""
    current = event_class(type_name).schema_version
    if schema_version > current:
        # Written by newer code than this: refuse rather than guess.
        raise UnknownEventTypeError(type_name, schema_version)
    version = schema_version
    while version < current:
        try:
            step = UPCASTERS[(type_name, version)]
        except KeyError:
            raise UnknownEventTypeError(type_name, version) from None
        data = step(data)
        version += 1
    return data


@upcaster("SharePlanned", from_version=1)
def _share_planned_v1_to_v2(data: Data) -> Data:
    """v1 kept response-plan offsets in whole minutes (``after_minutes``); v2 in seconds.

    v1 also predates per-account late policies: absent means "send".
    """
    plan = [
        {"kind": step["kind"], "after_seconds": int(step["after_minutes"]) * 60, "owner": step["owner"]}
        for step in data.get("response_plan", [])
    ]
    return {**data, "response_plan": plan}
