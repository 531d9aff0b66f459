"""A thread's parts, pure: the resume point, each part's key and state, the events that record
a part, and the checks of a share's content per channel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from events.catalogue import ContentWarning, ResponseStep, SharedMedia, SharePart, SharePlanned
from scheduler.domain import content
from scheduler.domain import share as lifecycle
from scheduler.domain.retry import RetryPolicy
from scheduler.domain.share import ShareState
from scheduler.errors import InvalidInputError

T0 = datetime(2026, 12, 6, 12, tzinfo=UTC)
STEP = ResponseStep(kind="check_replies", after_seconds=3600, owner="alice")


def planned(parts: int = 3, **kw: object) -> SharePlanned:
    texts = [f"{i + 1}/ part" for i in range(parts)]
    return SharePlanned(share_id=uuid4(), account_id=uuid4(), account_name="main", channel="console",
                        text=texts[0], scheduled_at=T0, response_plan=(STEP,),
                        parts=tuple(SharePart(text=t) for t in texts) if parts > 1 else (), **kw)  # type: ignore[arg-type]


def sending(plan: SharePlanned) -> ShareState:
    state = lifecycle.fold([plan])
    decision = lifecycle.start_attempt(state, now=T0, in_flight_grace=timedelta(0))
    assert isinstance(decision, lifecycle.Publish)
    return lifecycle.fold((e.event for e in decision.events), state)


def part_out(state: ShareState, part: int, *, external_id: str | None = None) -> ShareState:
    events = lifecycle.record_part_sent(state, attempt=state.attempts, part=part,
                                        external_id=external_id or f"post-{part}", url=f"https://x/{part}",
                                        cid=f"cid-{part}", sent_at=T0 + timedelta(seconds=part), reconciled=False,
                                        now=T0)
    return lifecycle.fold((e.event for e in events), state)


def test_each_part_has_its_own_key_and_the_first_keeps_the_shares() -> None:
    share_id = uuid4()
    keys = [lifecycle.part_key(share_id, i) for i in range(3)]
    assert keys[0] == lifecycle.idempotency_key(share_id)
    assert len(set(keys)) == 3


def test_an_attempt_resumes_after_the_last_part_recorded() -> None:
    state = sending(planned())
    assert lifecycle.resume_at(state) == 0
    state = part_out(part_out(state, 0), 1)
    assert lifecycle.resume_at(state) == 2
    assert [lifecycle.part_status(state, i) for i in range(3)] == ["sent", "sent", "sending"]
    assert state.status == "sending"


def test_the_last_part_records_the_share_sent_with_the_first_parts_post() -> None:
    state = part_out(part_out(part_out(sending(planned()), 0), 1), 2)
    assert state.status == "sent"
    assert state.sent is not None
    assert (state.sent.external_id, state.sent.url, state.sent.sent_at) == ("post-0", "https://x/0", T0)
    assert [lifecycle.part_status(state, i) for i in range(3)] == ["sent"] * 3


def test_a_part_recorded_again_is_a_no_op_and_another_post_for_it_a_duplicate() -> None:
    state = part_out(sending(planned()), 0)
    again = lifecycle.record_part_sent(state, attempt=1, part=0, external_id="post-0", url=None, cid=None,
                                       sent_at=T0, reconciled=True, now=T0)
    assert again == ()
    other = lifecycle.record_part_sent(state, attempt=1, part=0, external_id="post-9", url=None, cid=None,
                                       sent_at=T0, reconciled=False, now=T0)
    assert [e.event.type_name for e in other] == ["DuplicatePosted"]


def test_a_died_attempt_leaves_only_the_resume_part_in_doubt() -> None:
    # Given an attempt that recorded part 0 and died while sending part 1
    state = part_out(sending(planned()), 0)
    # Then the next attempt looks up first, at part 1 (parts 0 is in the log: never sent again)
    decision = lifecycle.start_attempt(state, now=T0 + timedelta(minutes=1), in_flight_grace=timedelta(0))
    assert isinstance(decision, lifecycle.Publish)
    assert decision.reconcile
    after = lifecycle.fold((e.event for e in decision.events), state)
    assert lifecycle.resume_at(after) == 1
    # And once part 1 is found and recorded, the doubt is settled for the parts after it
    assert not part_out(after, 1).outcome_unknown


def test_a_thread_that_failed_shows_the_failed_part_and_the_ones_waiting() -> None:
    state = part_out(sending(planned()), 0)
    failed = lifecycle.record_failure(state, attempt=1, reason="503", retryable=True, outcome_unknown=False,
                                      now=T0, policy=RetryPolicy(),
                                      random=0.5)
    state = lifecycle.fold((e.event for e in failed), state)
    assert [lifecycle.part_status(state, i) for i in range(3)] == ["sent", "failed", "planned"]


def test_warnings_and_texts_per_part() -> None:
    warning = ContentWarning(text="spoilers", label="graphic-media")
    own = ContentWarning(text="the ending")
    plan = planned(2, content_warning=warning)
    plan = plan.model_copy(update={"parts": (SharePart(text="a"), SharePart(text="b", content_warning=own))})
    assert content.warning_of(plan, 0) == warning
    assert content.warning_of(plan, 1) == own
    assert content.parts_of(plan)[1].text == "b"
    assert content.bluesky_text("a", warning) == "CW: spoilers\n\na"


def test_limits_name_the_part_and_count_the_warning() -> None:
    parts = (SharePart(text="fine"), SharePart(text="a" * 501))
    with pytest.raises(InvalidInputError) as caught:
        content.check_parts("mastodon", {}, parts, None)
    assert caught.value.field == "parts.1.text"
    # Mastodon counts the spoiler text with the status
    warning = ContentWarning(text="w" * 10)
    with pytest.raises(InvalidInputError) as counted:
        content.check_parts("mastodon", {}, (SharePart(text="a" * 495),), warning)
    assert counted.value.field == "text"
    assert "content warning" in counted.value.message
    content.check_parts("mastodon", {}, (SharePart(text="a" * 490),), warning)
    # Bluesky counts its CW line in the post's 300 graphemes
    with pytest.raises(InvalidInputError):
        content.check_parts("bluesky", {}, (SharePart(text="a" * 290),), warning)
    with pytest.raises(InvalidInputError) as empty:
        content.check_parts("console", {}, (SharePart(text="x"), SharePart(text="  ")), None)
    assert empty.value.field == "parts.1.text"


@pytest.mark.parametrize("tag", ["en", "de-CH", "pt-BR", "zh-Hant-TW", "sr-Latn", "es-419", "de-CH-1996"])
def test_bcp47_tags_are_accepted(tag: str) -> None:
    assert content.language_problem(tag) is None


@pytest.mark.parametrize("tag", ["", "english!", "e", "en_US", "en-", "123", "en--us", "x" * 9])
def test_what_is_no_language_tag_is_refused(tag: str) -> None:
    assert content.language_problem(tag) is not None


def test_tags_are_normalised_and_mastodon_gets_the_language() -> None:
    assert content.normal_language("PT-br") == "pt-BR"
    assert content.normal_language("zh-hant-tw") == "zh-Hant-TW"
    assert content.primary_language("pt-BR") == "pt"


def test_each_parts_media_are_its_own_and_the_shares_go_on_the_first() -> None:
    banner, photo, chart = (SharedMedia(media_id=uuid4(), kind="image", mime="image/png", alt=a)
                            for a in ("banner", "photo", "chart"))
    plan = planned(3, media=(banner,))
    plan = plan.model_copy(update={"parts": (plan.parts[0], plan.parts[1].model_copy(update={"media": (photo,)}),
                                             plan.parts[2].model_copy(update={"media": (chart,)}))})
    assert [content.media_of(plan, i) for i in range(3)] == [(banner,), (photo,), (chart,)]
    assert content.all_media(plan) == (banner, photo, chart)
