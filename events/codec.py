"""Turning rows of the ``events`` table into typed events and events into row values."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
import psycopg
from psycopg.types.numeric import Int8BinaryLoader, IntLoader

from events.catalogue import Event, event_class
from events.records import NewEvent, RecordedEvent
from events.upcasting import upcast

# position, event_id, stream_id, stream_version, type, schema_version, data, metadata,
# workspace_id, recorded_at, epoch, tx_id — the column order of every read query.
Row = tuple[int, UUID, str, int, str, int, str, str, str, datetime, int, int]

# psycopg has no loader for ``xid8`` (a transaction id: an unsigned 64-bit integer that
# never reaches 2**63 in practice): read it as ``int8`` is read, on every connection of
# the process, so the log's reads take it straight off the wire instead of casting it
# to text on the server and parsing that here.
XID8_OID = 5069
psycopg.adapters.register_loader(XID8_OID, IntLoader)
psycopg.adapters.register_loader(XID8_OID, Int8BinaryLoader)


def decode(row: Row) -> RecordedEvent:
    return decode_rows((row,))[0]


def decode_rows(rows: Iterable[Row]) -> list[RecordedEvent]:
    """Rows of one read, in order, as recorded events."""
    return list(iter_decoded(rows))


def iter_decoded(rows: Iterable[Row]) -> Iterator[RecordedEvent]:
    """Rows of one read, in order, as recorded events, one at a time.

    One at a time so that a reader that drops each event (a projection folding the
    whole log) lets it die young: a page decoded into a list outlives the collector's
    youngest generation, gets promoted, and makes the full collections that follow scan
    it (measured: 10-15 % of the whole-log read).

    The whole-log read's hot loop (profiled: pydantic's validation of the JSON text is
    the biggest single cost). So each event's JSON text goes straight to its class's
    validator (what ``model_validate_json`` calls, minus its keyword handling: 2.1 µs
    instead of 2.7 for a ShareSent), looked up once per type and read; old schema
    versions are upcast from parsed data, then validated. The row's own tuple order is
    the recorded event's, so each is built in C from a tuple.
    """
    validators: dict[str, tuple[int, Callable[[str], Event], Callable[[Any], Event]]] = {}
    loads = orjson.loads
    make = RecordedEvent._make
    for position, event_id, stream_id, version, type_name, schema_version, data, meta, workspace_id, \
            recorded_at, epoch, tx_id in rows:
        known = validators.get(type_name)
        if known is None:
            cls = event_class(type_name)
            known = validators[type_name] = (
                cls.schema_version, cls.__pydantic_validator__.validate_json, cls.__pydantic_validator__.validate_python
            )
        current, from_json, from_python = known
        if schema_version == current:
            event = from_json(data)
        else:
            event = from_python(upcast(type_name, schema_version, loads(data)))
        yield make((
            position, event_id, stream_id, version, event, schema_version, loads(meta), workspace_id, recorded_at,
            epoch, tx_id,
        ))


def _data(event: Event) -> str:
    # The model's serializer without model_dump_json's option handling: this runs once
    # per appended event, on the hottest path of the service.
    return event.__pydantic_serializer__.to_json(event).decode()


def _metadata(meta: Mapping[str, Any]) -> str:
    return orjson.dumps(meta if type(meta) is dict else dict(meta)).decode()


def encode_one(event: NewEvent, stream_id: str, expected: int, workspace_id: str) -> tuple[Any, ...]:
    """Positional parameters of the one-event append."""
    payload = event.event
    return (
        event.event_id, stream_id, expected, payload.type_name, payload.schema_version,
        _data(payload), _metadata(event.metadata), workspace_id,
    )


def append_rows(appends: Iterable[tuple[str, int, str, Sequence[NewEvent]]]) -> str:
    """The many-stream append's one parameter: every event's row, as a JSON array (stream,
    expected version, workspace, events). One jsonb parameter costs the client a sixth of
    what nine array parameters did (psycopg dumps arrays element by element, in Python),
    and each event's data goes in as the JSON it already is."""
    fragment = orjson.Fragment
    rows = []
    for stream_id, expected, workspace_id, events in appends:
        for ord_, e in enumerate(events, 1):
            payload = e.event
            rows.append({
                "stream_id": stream_id, "expected": expected, "workspace_id": workspace_id, "ord": ord_,
                "event_id": e.event_id, "type": payload.type_name, "schema_version": payload.schema_version,
                "data": fragment(payload.__pydantic_serializer__.to_json(payload)),
                "metadata": e.metadata if type(e.metadata) is dict else dict(e.metadata),
            })
    return orjson.dumps(rows).decode()


def encode(events: Sequence[NewEvent]) -> dict[str, list[Any]]:
    """Column arrays for the append statement's ``unnest``."""
    return {
        "event_ids": [e.event_id for e in events],
        "types": [e.event.type_name for e in events],
        "schema_versions": [e.event.schema_version for e in events],
        "data": [_data(e.event) for e in events],
        "metadata": [_metadata(e.metadata) for e in events],
    }
