"""Webhooks' pure parts: which URLs and events an endpoint may have, the retry backoff and
when an endpoint is disabled, the Standard Webhooks signature, secrets sealed at rest."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from events.catalogue import ReplyAnswered, ReplyAssigned, ResponseReceived, ShareSent
from events.ids import reply_uuid
from events.projections.webhooks import EVENT_TYPES, FROM_LOG, event_data
from followthrough.webhooks import local_key
from scheduler.errors import InvalidInputError
from scheduler.services.webhook_outbox import Claimed, DeliveryPolicy
from scheduler.services.webhook_secrets import SecretBox, SecretUnreadableError, generate_key
from scheduler.services.webhooks import message_id, new_secret, validate_events, validate_url
from workers.webhooks import signed_request

NOW = datetime.now(UTC)


@pytest.mark.parametrize("url", [
    "https://example.com/hooks", "https://example.com:8443/h?x=1", "http://127.0.0.1:9000/hooks",
    "http://localhost/hooks", "http://[::1]:8080/h",
])
def test_https_urls_and_plain_http_to_loopback_are_accepted(url: str) -> None:
    assert validate_url(url) == url


@pytest.mark.parametrize("url", [
    "http://example.com/hooks", "http://10.0.0.1/hooks", "ftp://127.0.0.1/x", "https://", "example.com/hooks",
    "https://u:p@example.com/h", "https://example.com/h#frag", "https://example.com:99999/h", "",
    "https://example.com/" + "a" * 2000,
])
def test_other_urls_are_refused_naming_the_url_field(url: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        validate_url(url)
    assert refused.value.field == "url"


def test_events_are_kept_once_in_the_documented_order_and_unknown_ones_refused_by_index() -> None:
    assert validate_events(["task.overdue", "share.sent", "share.sent"]) == ["share.sent", "task.overdue"]
    with pytest.raises(InvalidInputError) as refused:
        validate_events(["share.sent", "share.planned"])
    assert refused.value.field == "events.1"
    with pytest.raises(InvalidInputError) as empty:
        validate_events([])
    assert empty.value.field == "events"


def test_every_log_event_told_to_receivers_is_subscribable_and_replies_are_among_them() -> None:
    assert set(FROM_LOG.values()) <= set(EVENT_TYPES)
    assert FROM_LOG[ResponseReceived.type_name] == "reply.received"
    assert FROM_LOG[ReplyAnswered.type_name] == "reply.answered"
    assert FROM_LOG[ReplyAssigned.type_name] == "reply.assigned"
    assert EVENT_TYPES == ("share.sent", "share.failed", "share.abandoned", "share.held", "share.review_overdue",
                           "reply.received", "reply.answered", "reply.assigned", "task.overdue", "reply.sla_at_risk",
                           "reply.sla_breached")


def test_a_reply_event_names_the_reply_by_the_api_s_id_and_the_network_s() -> None:
    share_id = "0b9d3c1e-3f7a-4c55-9a43-0c2f4a8e6d11"
    received = ResponseReceived(reply_id="77", author="@ana", text="when?", url="https://x.social/@ana/77",
                                received_at=NOW)
    api_id = str(reply_uuid(UUID(share_id), "77"))
    assert event_data(received, share_id) == {"id": api_id, "reply_id": "77", "author": "@ana", "text": "when?",
                                              "url": "https://x.social/@ana/77", "received_at": NOW.isoformat()}
    answered = ReplyAnswered(reply_id="77", external_id="78", url="https://x.social/@me/78", answered_at=NOW)
    assert event_data(answered, share_id) == {
        "id": api_id, "reply_id": "77", "answered_at": NOW.isoformat(),
        "answer": {"external_id": "78", "url": "https://x.social/@me/78", "native": False}}
    assigned = ReplyAssigned(reply_id="77", assignee="bob", assigned_by="carla", assigned_at=NOW)
    assert event_data(assigned, share_id) == {"id": api_id, "reply_id": "77", "assignee": "bob", "by": "carla",
                                              "assigned_at": NOW.isoformat()}


def test_a_sent_event_tells_the_receiver_where_the_post_is() -> None:
    sent = ShareSent(attempt=1, external_id="9", url="https://example.social/@a/9", scheduled_at=NOW, sent_at=NOW,
                     lateness_ms=12)
    assert event_data(sent, "0b9d3c1e-3f7a-4c55-9a43-0c2f4a8e6d11") == {"attempt": 1, "external_id": "9", "url": "https://example.social/@a/9",
                                "sent_at": NOW.isoformat(), "lateness_ms": 12}


def test_retries_back_off_up_to_a_cap_and_stop_after_the_last_attempt() -> None:
    policy = DeliveryPolicy(max_attempts=5, retry_base_seconds=5, retry_factor=4, retry_cap_seconds=300)
    delays = [policy.retry_delay(attempt, 0.5) for attempt in range(1, 6)]
    assert delays == [timedelta(seconds=5), timedelta(seconds=20), timedelta(seconds=80), timedelta(seconds=300),
                      None]
    low, high = policy.retry_delay(2, 0.0), policy.retry_delay(2, 0.999)
    assert low is not None
    assert high is not None
    assert timedelta(seconds=15) <= low < high < timedelta(seconds=25)


def test_an_endpoint_is_disabled_after_enough_failures_or_a_long_enough_run_of_them() -> None:
    policy = DeliveryPolicy(disable_after_failures=10, disable_after_seconds=86_400)
    assert policy.disable_reason(9, NOW - timedelta(hours=23), NOW) is None
    assert policy.disable_reason(10, NOW, NOW) == "10 consecutive failed attempts"
    reason = policy.disable_reason(2, NOW - timedelta(days=1), NOW)
    assert reason is not None
    assert reason.startswith("failing since")


def claimed(secret: str) -> Claimed:
    return Claimed(id=UUID(int=7), endpoint_id=UUID(int=1), workspace_id="acme", event_type="share.sent",
                   event_key="e1", payload={"type": "share.sent", "data": {"n": 1}}, attempt=1,
                   url="https://example.com/h", sealed_secret=secret)


def test_a_signed_request_verifies_with_the_standard_webhooks_library_and_a_changed_body_does_not() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    # Signed now: the library refuses a timestamp more than 5 minutes old (NOW is the module's import time)
    body, headers = signed_request(claimed(secret), secret, datetime.now(UTC))
    assert headers["webhook-id"] == message_id(UUID(int=7))
    assert Webhook(secret).verify(body, headers) == {"type": "share.sent", "data": {"n": 1}}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"1", b"2"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)


def test_secrets_are_sealed_at_rest_opened_with_any_configured_key_and_not_with_another() -> None:
    old, new = generate_key(), generate_key()
    sealed = SecretBox([old]).seal("whsec_abc")
    assert "whsec_abc" not in sealed
    assert SecretBox.from_setting(f"{new},{old}").open(sealed) == "whsec_abc"
    assert SecretBox([new]).open(SecretBox.from_setting(f"{new},{old}").seal("whsec_def")) == "whsec_def"
    with pytest.raises(SecretUnreadableError):
        SecretBox([new]).open(sealed)
    assert old not in repr(SecretBox([old]))


def test_a_resealed_secret_opens_with_the_first_key_alone_and_an_unreadable_one_is_refused() -> None:
    old, new = generate_key(), generate_key()
    sealed = SecretBox([old]).seal("whsec_abc")
    resealed = SecretBox.from_setting(f"{new},{old}").reseal(sealed)
    assert resealed.startswith("fernet:")
    assert SecretBox([new]).open(resealed) == "whsec_abc"
    with pytest.raises(SecretUnreadableError):
        SecretBox([old]).open(resealed)
    with pytest.raises(SecretUnreadableError):
        SecretBox([new]).reseal(sealed)
    with pytest.raises(SecretUnreadableError):
        SecretBox([new]).reseal("whsec_abc")


def test_a_failing_endpoint_pauses_longer_with_each_failure_up_to_the_cap() -> None:
    policy = DeliveryPolicy(retry_base_seconds=5, retry_factor=4, retry_cap_seconds=60)
    assert [policy.pause(n, 0.5) for n in (1, 2, 3, 50)] == [
        timedelta(seconds=5), timedelta(seconds=20), timedelta(seconds=60), timedelta(seconds=60)]


def test_threads_creating_the_local_key_at_once_agree_on_one_key_and_leave_no_file_aside(tmp_path: Path) -> None:
    # Given no key yet, and eight threads of one process (as the roles a test runs in one
    # process) that all need it at the same moment
    path = tmp_path / "webhook-secret.key"
    start = threading.Barrier(8)

    def read_or_create(_: int) -> str:
        start.wait()
        return local_key(path)

    # When they read or create it at once
    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = list(pool.map(read_or_create, range(8)))
    # Then none failed, all hold the same key, readable by its owner only, and nothing else is left
    assert len(set(keys)) == 1
    assert SecretBox([keys[0]]).open(SecretBox([keys[0]]).seal("whsec_x")) == "whsec_x"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["webhook-secret.key"]
