"""The event catalogue, upcasting of old schema versions, the row codec, checkpoints."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events import codec
from events.catalogue import (
    CATALOGUE,
    Event,
    ResponseReceived,
    ResponseStep,
    ShareAttemptStarted,
    ShareFailed,
    SharePlanned,
    event_class,
)
from events.errors import UnknownEventTypeError
from events.records import Checkpoint, NewEvent, metadata
from events.upcasting import upcast
from tests.support.factories import ACCOUNT_ID, SHARE_ID, T0, planned, share_histories

FAST = settings(max_examples=100, deadline=None, database=None)

EXPECTED_TYPES = {
    "SharePlanned",
    "ShareRescheduled",
    "ShareCancelled",
    "ShareAttemptStarted",
    "ResponseTasksRecorded",
    "ShareSent",
    "ShareFailed",
    "ShareHeld",
    "ShareAbandoned",
    "ResponseTasksCancelled",
    "ResponseReceived",
    "ResponseTaskCompleted",
}


def _v1_planned(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "share_id": str(SHARE_ID),
        "account_id": str(ACCOUNT_ID),
        "account_name": "team",
        "channel": "mastodon",
        "text": "Hello",
        "scheduled_at": "2025-03-01T09:00:00+00:00",
        "response_plan": [
            {"kind": "check_replies", "after_minutes": 60, "owner": "alice"},
            {"kind": "check_again", "after_minutes": 1440, "owner": "bob"},
        ],
    }
    data.update(overrides)
    return data


def _row(type_name: str, schema_version: int, data: str, *, position: int = 7) -> codec.Row:
    return (
        position,
        uuid4(),
        f"share-{SHARE_ID}",
        1,
        type_name,
        schema_version,
        data,
        json.dumps({"workspace_id": "ws", "actor": "api"}),
        "ws",
        T0,
        1,
        1234,
    )


# --- the catalogue ----------------------------------------------------------------------


def test_the_catalogue_registers_every_share_event_by_name() -> None:
    # Given the event classes of the share lifecycle
    # When looked up by name
    # Then each resolves to its class, and SharePlanned is at schema version 2
    assert set(CATALOGUE) >= EXPECTED_TYPES
    for name in EXPECTED_TYPES:
        assert event_class(name).type_name == name
    assert SharePlanned.schema_version == 2
    assert ShareFailed.schema_version == 1


def test_an_unknown_event_type_fails_loudly_naming_it() -> None:
    # Given a type name no class registered
    # When looked up
    # Then UnknownEventTypeError names it
    with pytest.raises(UnknownEventTypeError) as caught:
        event_class("ShareTeleported")
    assert caught.value.type_name == "ShareTeleported"
    assert "ShareTeleported" in str(caught.value)


def test_registering_a_type_name_twice_is_refused() -> None:
    # Given a class already registered as ShareFailed
    # When another class claims the same name
    # Then the definition fails
    with pytest.raises(TypeError, match="registered twice"):

        class Impostor(Event, type_name="ShareFailed"):
            reason: str


def test_events_are_immutable_and_strict_about_unknown_fields() -> None:
    # Given an event
    event = ShareFailed(attempt=1, failed_at=T0, reason="503", retryable=True)
    # When changed, or built with a field it does not have, or a naive time
    # Then each is refused
    with pytest.raises(ValueError, match="frozen"):
        event.reason = "other"  # type: ignore[misc]
    with pytest.raises(ValueError, match="extra"):
        ShareFailed(attempt=1, failed_at=T0, reason="503", retryable=True, colour="red")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="timezone"):
        ShareFailed(attempt=1, failed_at=datetime(2025, 3, 1), reason="503", retryable=True)  # noqa: DTZ001


# --- upcasting --------------------------------------------------------------------------


def test_a_v1_share_planned_upcasts_to_v2_with_offsets_in_seconds() -> None:
    # Given SharePlanned data stored at schema version 1 (offsets in minutes)
    data = _v1_planned()
    # When upcast to the current version and validated
    event = SharePlanned.model_validate(upcast("SharePlanned", 1, data))
    # Then the offsets are in seconds and the late policy defaults to "send"
    assert event.response_plan == (
        ResponseStep(kind="check_replies", after_seconds=3600, owner="alice"),
        ResponseStep(kind="check_again", after_seconds=86_400, owner="bob"),
    )
    assert event.late_policy == "send"
    assert event.max_lateness_seconds is None
    assert event.scheduled_at == T0


def test_upcasting_does_not_change_the_stored_data() -> None:
    # Given v1 data
    data = _v1_planned()
    before = json.dumps(data, sort_keys=True)
    # When upcast
    upcast("SharePlanned", 1, data)
    # Then the input is untouched (old versions are read, never rewritten)
    assert json.dumps(data, sort_keys=True) == before


@FAST
@given(minutes=st.lists(st.integers(0, 43_200), min_size=1, max_size=5))
def test_every_v1_offset_in_minutes_becomes_sixty_times_as_many_seconds(minutes: list[int]) -> None:
    # Given a v1 plan with any offsets in minutes
    plan = [{"kind": "check_replies", "after_minutes": m, "owner": "alice"} for m in minutes]
    # When upcast
    event = SharePlanned.model_validate(upcast("SharePlanned", 1, _v1_planned(response_plan=plan)))
    # Then each offset is 60 times as many seconds, in order
    assert [s.after_seconds for s in event.response_plan] == [60 * m for m in minutes]


def test_data_at_the_current_version_passes_through_unchanged() -> None:
    # Given v2 data
    data = planned().model_dump(mode="json")
    # When "upcast" from the current version
    # Then it is returned as it is
    assert upcast("SharePlanned", 2, data) == data


def test_an_unknown_type_is_refused_when_upcasting() -> None:
    # Given data of a type this code does not know
    # When upcast
    # Then UnknownEventTypeError names the type
    with pytest.raises(UnknownEventTypeError) as caught:
        upcast("ShareTeleported", 1, {})
    assert caught.value.type_name == "ShareTeleported"


def test_a_version_newer_than_the_code_is_refused_rather_than_guessed() -> None:
    # Given SharePlanned data written by newer code (v3)
    # When upcast by this code
    # Then UnknownEventTypeError names the type and the version
    with pytest.raises(UnknownEventTypeError) as caught:
        upcast("SharePlanned", 3, _v1_planned())
    assert (caught.value.type_name, caught.value.schema_version) == ("SharePlanned", 3)
    assert "SharePlanned" in str(caught.value)
    assert "3" in str(caught.value)


def test_a_version_with_no_upcaster_is_refused() -> None:
    # Given SharePlanned data at version 0 (no upcaster from 0)
    # When upcast
    # Then UnknownEventTypeError names the missing step
    with pytest.raises(UnknownEventTypeError) as caught:
        upcast("SharePlanned", 0, {})
    assert (caught.value.type_name, caught.value.schema_version) == ("SharePlanned", 0)


# --- the codec --------------------------------------------------------------------------


def test_decoding_a_v1_row_returns_the_typed_v2_event() -> None:
    # Given a row stored at SharePlanned v1
    row = _row("SharePlanned", 1, json.dumps(_v1_planned()))
    # When decoded
    recorded = codec.decode(row)
    # Then it is a current SharePlanned, and the row remembers the version it was stored at
    assert isinstance(recorded.event, SharePlanned)
    assert recorded.event.response_plan[0].after_seconds == 3600
    assert recorded.stored_schema_version == 1
    assert recorded.type_name == "SharePlanned"


def test_decoding_a_current_row_keeps_every_column() -> None:
    # Given a row at the current version
    event = ShareAttemptStarted(attempt=2, started_at=T0, idempotency_key="k", reconcile=True)
    row = _row("ShareAttemptStarted", 1, event.model_dump_json(), position=42)
    # When decoded
    recorded = codec.decode(row)
    # Then the event, metadata, position and checkpoint come back typed
    assert recorded.event == event
    assert recorded.position == 42
    assert recorded.stream_id == f"share-{SHARE_ID}"
    assert recorded.metadata == {"workspace_id": "ws", "actor": "api"}
    assert recorded.tx_id == 1234
    assert recorded.checkpoint == Checkpoint(1, 1234, 42)


def test_decoding_a_row_of_an_unknown_type_fails_naming_it() -> None:
    # Given a row of a type this code does not know
    # When decoded
    # Then UnknownEventTypeError names it
    with pytest.raises(UnknownEventTypeError, match="ShareTeleported"):
        codec.decode(_row("ShareTeleported", 1, "{}"))


def test_decoding_a_row_from_newer_code_fails_naming_type_and_version() -> None:
    # Given a SharePlanned row at v3
    # When decoded
    # Then UnknownEventTypeError names the type and version
    with pytest.raises(UnknownEventTypeError) as caught:
        codec.decode(_row("SharePlanned", 3, json.dumps(_v1_planned())))
    assert (caught.value.type_name, caught.value.schema_version) == ("SharePlanned", 3)


@FAST
@given(history=share_histories(max_commands=15))
def test_every_event_survives_encoding_and_decoding(history: list[Event]) -> None:
    # Given the events of any valid share history
    batch = [NewEvent(e, metadata=metadata(workspace_id="ws", actor="worker", correlation_id="c")) for e in history]
    # When encoded to column arrays and decoded back from rows
    columns = codec.encode(batch)
    rows = [
        (
            i,
            columns["event_ids"][i],
            "s",
            i + 1,
            columns["types"][i],
            columns["schema_versions"][i],
            columns["data"][i],
            columns["metadata"][i],
            "ws",
            T0,
            0,
            "1",
        )
        for i in range(len(batch))
    ]
    decoded = [codec.decode(r) for r in rows]
    # Then the events, ids and metadata are the same
    assert [d.event for d in decoded] == history
    assert [d.event_id for d in decoded] == [e.event_id for e in batch]
    assert decoded[0].metadata == {"workspace_id": "ws", "actor": "worker", "correlation_id": "c"}


def test_reply_text_with_any_unicode_round_trips() -> None:
    # Given a reply with emoji, quotes and control characters
    reply = ResponseReceived(reply_id="r", author="@c", text='Merci \U0001f44b\U0001f3ff "ok"\n\t\\', received_at=T0)
    # When encoded and decoded
    (data,) = codec.encode([NewEvent(reply)])["data"]
    # Then it is the same reply
    assert codec.decode(_row("ResponseReceived", 1, data)).event == reply


# --- records ----------------------------------------------------------------------------


def test_checkpoints_order_by_epoch_then_transaction_then_position() -> None:
    # Given checkpoints differing in each part
    ordered = [
        Checkpoint.start(),
        Checkpoint(0, 5, 100),
        Checkpoint(0, 6, 1),  # a later transaction with an earlier position sorts after
        Checkpoint(0, 6, 2),
        Checkpoint(1, 1, 1),  # a new epoch (restored database) sorts after everything before it
    ]
    # When sorted
    # Then they keep this order
    assert sorted(ordered[i] for i in (3, 0, 4, 2, 1)) == ordered
    assert str(Checkpoint(1, 2, 3)) == "1/2/3"


def test_metadata_carries_workspace_and_actor_and_only_given_ids() -> None:
    # Given metadata without, then with, correlation and causation ids
    # When built
    # Then absent ids are left out
    assert metadata(workspace_id="ws", actor="api") == {"workspace_id": "ws", "actor": "api"}
    assert metadata(workspace_id="ws", actor="api", correlation_id="c", causation_id="m") == {
        "workspace_id": "ws",
        "actor": "api",
        "correlation_id": "c",
        "causation_id": "m",
    }


def test_a_new_event_gets_a_fresh_id_unless_given_one() -> None:
    # Given two new events without ids and one with
    event = ShareFailed(attempt=1, failed_at=T0 + timedelta(seconds=1), reason="x", retryable=False)
    given_id = UUID(int=7)
    # When created
    # Then generated ids differ and a given id is kept
    assert NewEvent(event).event_id != NewEvent(event).event_id
    assert NewEvent(event, event_id=given_id).event_id == given_id
