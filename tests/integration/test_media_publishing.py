"""A share's media published by the workers, exactly once: on Mastodon (uploads through
``/api/v2/media``, waited for while the server processes them, then ``media_ids`` on the
status), and in the console channel (files beside the posts, by sha256). Bluesky's images are
shown against the dev network (``test_bluesky_devnet.py``)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import orjson
import pytest
from psycopg_pool import ConnectionPool

from events.store import EventStore
from scheduler.domain.media import MediaRequest
from scheduler.domain.share import idempotency_key
from scheduler.services.shares import ShareService
from tests.support.fake_mastodon import TOKEN, FakeMastodon
from tests.support.media import noisy_png, png, stored
from tests.support.servers import now
from tests.support.shares import WS, Clock, make_account, mastodon_account, plan, runtime, share_service, view
from tests.support.threads import plan_thread
from workers.channels import Attachment, Post, TransientChannelError
from workers.channels.console import ConsolePublisher
from workers.channels.mastodon import MastodonPublisher
from workers.channels.mastodon_media import PROCESSING_BUDGET
from workers.execution import execute_share

pytestmark = pytest.mark.integration

ENV = {"TEAM_MASTODON_TOKEN": TOKEN}


@pytest.fixture
def mastodon_client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=httpx.Timeout(5.0, read=0.5)) as c:
        yield c


def test_media_the_server_processes_asynchronously_are_waited_for_and_the_status_made_once_with_them(
    store: EventStore, pool: ConnectionPool[Any], mastodon: FakeMastodon, mastodon_client: httpx.Client
) -> None:
    # Given a server that processes media asynchronously (202, then 206, then 200)
    mastodon.knobs.media_processing_polls = 2
    # And a share with two images, one with a focal point, one with the alt the share gives it
    first = stored(pool, png(64, 48), alt="A red square", focus=(0.5, -0.25))
    second = stored(pool, png(32, 32, (0, 200, 0)), alt="Green")
    shares = share_service(pool, store)
    share_id = plan(shares, mastodon_account(pool, mastodon.base_url), text="Two pictures",
                    media=[MediaRequest(first), MediaRequest(second, alt="A green square")])
    rt = runtime(pool, store, MastodonPublisher(mastodon_client, env=ENV), clock=Clock())
    # When a worker delivers it
    assert execute_share(rt, share_id) == "share_sent"
    # Then each upload was answered 202, looked at while processing (206) until processed (200)
    uploads = list(mastodon.media)
    assert len(uploads) == 2
    assert mastodon.media_answers == [(uploads[0], 202), (uploads[0], 206), (uploads[0], 200),
                                      (uploads[1], 202), (uploads[1], 206), (uploads[1], 200)]
    # And one status was made, with both media in order, their descriptions and the focus
    assert mastodon.creations == 1
    [made] = mastodon.made
    assert made["text"] == "Two pictures"
    assert [(m["id"], m["description"], m["focus"]) for m in made["media"]] == [
        (uploads[0], "A red square", (0.5, -0.25)), (uploads[1], "A green square", None)]
    assert [m["sha256"] for m in made["media"]] == [hashlib.sha256(png(64, 48)).hexdigest(),
                                                    hashlib.sha256(png(32, 32, (0, 200, 0))).hexdigest()]
    assert view(shares, share_id)["external_id"] == made["id"]


def test_a_slow_mastodon_ignoring_idempotency_keys_gets_one_status_with_the_media(
    store: EventStore, pool: ConnectionPool[Any], mastodon: FakeMastodon, mastodon_client: httpx.Client
) -> None:
    # Given a Mastodon that ignores Idempotency-Key and answers a status later than the worker
    # waits (the status is made), processing media asynchronously
    mastodon.knobs.honour_idempotency_key = False
    mastodon.knobs.latency = 1.5
    mastodon.knobs.media_processing_polls = 1
    media_id = stored(pool, png(), alt="A red square")
    shares = share_service(pool, store)
    share_id = plan(shares, mastodon_account(pool, mastodon.base_url), text="Slow, with a picture",
                    media=[MediaRequest(media_id)])
    clock = Clock()
    rt = runtime(pool, store, MastodonPublisher(mastodon_client, env=ENV), clock=clock)
    # When the first attempt's answer never comes
    assert execute_share(rt, share_id) == "share_retry_scheduled"
    assert mastodon.creations == 1
    # And the next delivery comes after the retry's time (the server now answers at once)
    mastodon.knobs.latency = 0.0
    clock.offset += _retry_wait(shares, share_id)
    assert execute_share(rt, share_id) == "share_sent"
    # Then the status made by the first attempt was found by its text: 0 duplicates, media attached
    assert mastodon.counts_by_text() == {"Slow, with a picture": 1}
    [made] = mastodon.made
    assert [m["description"] for m in made["media"]] == ["A red square"]
    assert view(shares, share_id)["external_id"] == made["id"]


def test_a_threads_media_go_on_its_first_post(
    store: EventStore, pool: ConnectionPool[Any], mastodon: FakeMastodon, mastodon_client: httpx.Client
) -> None:
    # Given a two-part thread with an image given as the share's (the first part's) media
    media_id = stored(pool, png(), alt="A red square")
    shares = share_service(pool, store)
    share_id = plan_thread(shares, mastodon_account(pool, mastodon.base_url).id, ["1/ with a picture", "2/ without"],
                           media=[MediaRequest(media_id)])
    rt = runtime(pool, store, MastodonPublisher(mastodon_client, env=ENV), clock=Clock())
    # When a worker delivers it
    assert execute_share(rt, share_id) == "share_sent"
    # Then the first post carries the image, the second answers it without media
    first, second = mastodon.made
    assert [m["description"] for m in first["media"]] == ["A red square"]
    assert (second["in_reply_to_id"], second["media"]) == (first["id"], [])
    assert len(mastodon.media) == 1


def test_a_threads_second_part_carries_its_own_image_and_the_first_none(
    store: EventStore, pool: ConnectionPool[Any], mastodon: FakeMastodon, mastodon_client: httpx.Client
) -> None:
    # Given a two-part thread with an image on its second part, on a server that processes media
    mastodon.knobs.media_processing_polls = 1
    media_id = stored(pool, png(), alt="A red square")
    shares = share_service(pool, store)
    account = mastodon_account(pool, mastodon.base_url)
    share_id = plan_thread(shares, account.id, ["1/ words first", "2/ then the picture"],
                           part_media={1: [MediaRequest(media_id, alt="The red square of part two")]})
    rt = runtime(pool, store, MastodonPublisher(mastodon_client, env=ENV), clock=Clock())
    # When a worker delivers it
    assert execute_share(rt, share_id) == "share_sent"
    # Then the first status has no media; the second answers it with the image and its description
    first, second = mastodon.made
    assert (first["text"], first["media"]) == ("1/ words first", [])
    assert second["in_reply_to_id"] == first["id"]
    [upload] = mastodon.media
    assert [(m["id"], m["description"]) for m in second["media"]] == [(upload, "The red square of part two")]
    assert [p["media"] for p in view(shares, share_id)["parts"]] == [[], [
        {"id": str(media_id), "kind": "image", "mime": "image/png", "alt": "The red square of part two",
         "decorative": False, "content": f"/v1/media/{media_id}/content"}]]


def _retry_wait(shares: ShareService, share_id: UUID) -> timedelta:
    """How far the share's next attempt is (a test's clock steps past it)."""
    return datetime.fromisoformat(view(shares, share_id)["next_attempt_at"]) - now()


def test_media_still_processing_past_the_bound_fail_the_attempt_retryably_and_the_retry_uploads_again(
    mastodon: FakeMastodon, mastodon_client: httpx.Client
) -> None:
    # Given a server that never finishes processing, and a clock the wait moves
    mastodon.knobs.media_processing_polls = -1
    moments = [0.0]
    publisher = MastodonPublisher(mastodon_client, env=ENV, monotonic=lambda: moments[0],
                                  sleep=lambda seconds: moments.__setitem__(0, moments[0] + seconds))
    post = _post(mastodon, "Never processed")
    # When the worker publishes a post with an image
    with pytest.raises(TransientChannelError) as failed:
        publisher.publish(post)
    # Then the attempt fails as retryable after the bound, with nothing posted (the upload unattached)
    assert "still processing" in failed.value.reason
    assert not failed.value.outcome_unknown
    assert moments[0] == pytest.approx(PROCESSING_BUDGET)
    polls = [answer for _, answer in mastodon.media_answers]
    assert polls[0] == 202
    assert set(polls[1:]) == {206}
    assert 5 <= len(polls) - 1 <= 15  # looked at with backoff, not in a tight loop
    assert mastodon.creations == 0
    # When the server processes again and the attempt is retried
    mastodon.knobs.media_processing_polls = 1
    published = publisher.publish(post)
    # Then the retry uploaded the image again and the status carries that upload only
    assert len(mastodon.media) == 2
    [made] = mastodon.made
    assert made["id"] == published.external_id
    assert [m["id"] for m in made["media"]] == [list(mastodon.media)[1]]


def _post(fake: FakeMastodon, text: str) -> Post:
    share_id = uuid4()
    data = noisy_png(40, 30)
    item = Attachment(media_id=uuid4(), kind="image", mime="image/png", data=data, width=40, height=30,
                      alt="Noise", focus=None, sha256=hashlib.sha256(data).hexdigest())
    return Post(share_id=share_id, workspace_id=WS, account_name="team",
                account_config={"base_url": fake.base_url, "access_token_env": "TEAM_MASTODON_TOKEN"},
                text=text, scheduled_at=now(), idempotency_key=idempotency_key(share_id), attempt=1,
                media=(item,))


def test_a_console_share_writes_its_media_beside_the_posts_and_its_line_names_them(
    store: EventStore, pool: ConnectionPool[Any], tmp_path: Path
) -> None:
    # Given a console share with an image
    image = png(20, 10)
    media_id = stored(pool, image, alt="A small red band")
    shares = share_service(pool, store)
    share_id = plan(shares, make_account(pool), text="With a file", media=[MediaRequest(media_id)])
    rt = runtime(pool, store, ConsolePublisher(tmp_path), clock=Clock())
    # When a worker delivers it (twice, as a repeated delivery would)
    assert execute_share(rt, share_id) == "share_sent"
    execute_share(rt, share_id)
    # Then the image is beside the posts file, named by its sha256, with the same bytes
    sha256 = hashlib.sha256(image).hexdigest()
    folder = tmp_path / WS
    assert (folder / "media" / f"{sha256}.png").read_bytes() == image
    # And the post's one line names the file and its alt
    [line] = [orjson.loads(raw) for raw in (folder / "main.jsonl").read_bytes().splitlines()]
    assert line["share_id"] == str(share_id)
    assert line["media"] == [{"file": f"media/{sha256}.png", "sha256": sha256, "mime": "image/png",
                              "alt": "A small red band"}]


def test_a_console_threads_part_line_names_its_own_media_file(
    store: EventStore, pool: ConnectionPool[Any], tmp_path: Path
) -> None:
    # Given a console thread whose second part has an image
    image = png(21, 11, (0, 0, 200))
    media_id = stored(pool, image, alt="A small blue band")
    shares = share_service(pool, store)
    share_id = plan_thread(shares, make_account(pool).id, ["1/ plain", "2/ with a file"],
                           part_media={1: [MediaRequest(media_id)]})
    rt = runtime(pool, store, ConsolePublisher(tmp_path), clock=Clock())
    # When a worker delivers it
    assert execute_share(rt, share_id) == "share_sent"
    # Then the second part's line names the file (written beside the posts); the first names none
    sha256 = hashlib.sha256(image).hexdigest()
    folder = tmp_path / WS
    first, second = [orjson.loads(raw) for raw in (folder / "main.jsonl").read_bytes().splitlines()]
    assert "media" not in first
    assert (second["part"], second["media"]) == (1, [{"file": f"media/{sha256}.png", "sha256": sha256,
                                                      "mime": "image/png", "alt": "A small blue band"}])
    assert (folder / "media" / f"{sha256}.png").read_bytes() == image
