"""Retry policy: exponential backoff with jitter, capped, honouring Retry-After, giving up."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.domain.retry import GiveUp, RetryAt, RetryPolicy
from tests.support.factories import T0

FAST = settings(max_examples=200, deadline=None, database=None)
POLICY = RetryPolicy(max_attempts=10, base=timedelta(seconds=30), cap=timedelta(hours=1), jitter=0.2)
randoms = st.floats(min_value=0, max_value=1, exclude_max=True)


def _delay(policy: RetryPolicy, attempt: int, random: float, retry_after: timedelta | None = None) -> timedelta:
    decision = policy.decide(attempt=attempt, retryable=True, now=T0, random=random, retry_after=retry_after)
    assert isinstance(decision, RetryAt), decision
    return decision.at - T0


def test_without_jitter_offset_the_delay_doubles_from_the_base() -> None:
    # Given random 0.5 (the middle of the jitter band: no offset)
    # When attempts 1 to 5 fail
    delays = [_delay(POLICY, attempt, 0.5) for attempt in range(1, 6)]
    # Then the delays are 30 s, 60 s, 120 s, 240 s, 480 s
    assert delays == [timedelta(seconds=30 * 2**n) for n in range(5)]


def test_the_jitter_band_spans_plus_and_minus_twenty_percent() -> None:
    # Given the lowest and highest random numbers
    # When attempt 1 fails
    # Then the delay is 24 s at the bottom of the band and just under 36 s at the top
    assert _delay(POLICY, 1, 0.0) == timedelta(seconds=24)
    assert timedelta(seconds=35.99) < _delay(POLICY, 1, 0.9999) < timedelta(seconds=36)


def test_the_delay_is_capped_before_jitter_is_applied() -> None:
    # Given an attempt whose doubling is far beyond the cap
    # When it fails with random 0.5
    # Then the delay is the cap
    assert _delay(POLICY, 9, 0.5) == POLICY.cap


@FAST
@given(attempt=st.integers(1, POLICY.max_attempts - 1), random=randoms)
def test_every_delay_lies_within_the_jitter_band_around_the_capped_backoff(attempt: int, random: float) -> None:
    # Given any attempt before the last and any random number
    nominal = min(POLICY.cap, POLICY.base * 2 ** (attempt - 1))
    # When it fails
    delay = _delay(POLICY, attempt, random)
    # Then the delay is within +-20 % of the capped backoff (so at most 1.2 x the cap)
    assert nominal * (1 - POLICY.jitter) <= delay <= nominal * (1 + POLICY.jitter)
    assert delay <= POLICY.cap * (1 + POLICY.jitter)


@FAST
@given(attempt=st.integers(1, POLICY.max_attempts - 2), random=randoms)
def test_the_backoff_never_shrinks_from_one_attempt_to_the_next_at_the_same_jitter(attempt: int, random: float) -> None:
    # Given two consecutive attempts with the same random number
    # When both fail
    # Then the later one waits at least as long
    assert _delay(POLICY, attempt + 1, random) >= _delay(POLICY, attempt, random)


@FAST
@given(
    attempt=st.integers(1, POLICY.max_attempts - 1),
    random=randoms,
    retry_after=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2)),
)
def test_a_retry_after_is_honoured_as_a_minimum(attempt: int, random: float, retry_after: timedelta) -> None:
    # Given a channel asking to wait retry_after
    # When an attempt fails
    delay = _delay(POLICY, attempt, random, retry_after)
    # Then the retry is no sooner than asked, and no later than the larger of the two waits
    assert delay >= retry_after
    assert delay == max(retry_after, _delay(POLICY, attempt, random))


def test_a_retry_after_beyond_the_cap_is_still_honoured() -> None:
    # Given a channel asking to wait 3 h, beyond the 1 h cap
    # When attempt 1 fails
    # Then the retry waits the 3 h (the server knows best)
    assert _delay(POLICY, 1, 0.5, timedelta(hours=3)) == timedelta(hours=3)


def test_the_last_attempt_gives_up() -> None:
    # Given a policy of 5 attempts
    policy = RetryPolicy(max_attempts=5)
    # When attempts 4 and 5 fail
    fourth = policy.decide(attempt=4, retryable=True, now=T0, random=0.5)
    fifth = policy.decide(attempt=5, retryable=True, now=T0, random=0.5)
    # Then the 4th is retried and the 5th gives up, saying after how many attempts
    assert isinstance(fourth, RetryAt)
    assert fifth == GiveUp("gave up after 5 attempts")


def test_a_policy_of_one_attempt_never_retries() -> None:
    # Given a policy of a single attempt
    # When it fails
    # Then it gives up
    assert isinstance(RetryPolicy(max_attempts=1).decide(attempt=1, retryable=True, now=T0, random=0.5), GiveUp)


@FAST
@given(attempt=st.integers(1, 50), random=randoms)
def test_a_permanent_failure_gives_up_at_once(attempt: int, random: float) -> None:
    # Given a failure that retrying cannot help
    # When it is decided, whatever the attempt or Retry-After
    decision = POLICY.decide(attempt=attempt, retryable=False, now=T0, random=random, retry_after=timedelta(seconds=1))
    # Then the policy gives up
    assert decision == GiveUp("permanent failure")


def test_a_policy_with_many_attempts_keeps_deciding_at_high_attempt_numbers() -> None:
    # Given an operator who configured 100 attempts
    policy = RetryPolicy(max_attempts=100)
    # When attempt 60 fails
    decision = policy.decide(attempt=60, retryable=True, now=T0, random=0.5)
    # Then it is retried after the cap
    assert decision == RetryAt(T0 + policy.cap)
