"""Turning rows of the ``events`` table into typed events and events into row values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from events.catalogue import Event, event_class
from events.records import NewEvent, RecordedEvent
from events.upcasting import upcast

# position, event_id, stream_id, stream_version, type, schema_version, data, metadata,
# workspace_id, recorded_at, epoch, tx_id — the column order of every read query.
Row = tuple[int, UUID, str, int, str, int, str, str, str, datetime, int, str]


def decode(row: Row) -> RecordedEvent:
    (
        position,
        event_id,
        stream_id,
        version,
        type_name,
        schema_version,
        data,
        meta,
        workspace_id,
        recorded_at,
        epoch,
        tx_id,
    ) = row
    cls = event_class(type_name)
    if schema_version == cls.schema_version:
        # Fast path: pydantic parses the JSON text straight into the model.
        event = cls.model_validate_json(data)
    else:
        event = cls.model_validate(upcast(type_name, schema_version, orjson.loads(data)))
    return RecordedEvent(
        position=position,
        event_id=event_id,
        stream_id=stream_id,
        stream_version=version,
        event=event,
        stored_schema_version=schema_version,
        metadata=orjson.loads(meta),
        workspace_id=workspace_id,
        recorded_at=recorded_at,
        epoch=epoch,
        tx_id=int(tx_id),
    )


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


def encode(events: Sequence[NewEvent]) -> dict[str, list[Any]]:
    """Column arrays for the append statement's ``unnest``."""
    return {
        "event_ids": [e.event_id for e in events],
        "types": [e.event.type_name for e in events],
        "schema_versions": [e.event.schema_version for e in events],
        "data": [_data(e.event) for e in events],
        "metadata": [_metadata(e.metadata) for e in events],
    }
