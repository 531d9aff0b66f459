"""The media library over HTTP against a real PostgreSQL: uploads checked by their content,
hostile files refused with a clear 4xx and nothing stored, the upload bound enforced while
the body arrives, GPS removed, the quota, deletes refused while a share needs the item,
workspaces kept apart, and shares attaching media with alt text checked per network."""

from __future__ import annotations

import hashlib
import select
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from PIL import ExifTags

from followthrough.bootstrap import api_config
from followthrough.settings import Settings
from scheduler.errors import NotFoundError
from scheduler.services import media as library
from tests.support import media as files
from tests.support.api import PLAN, api_client, assert_problem, bearer, stored
from tests.support.database import connect
from tests.support.fake_mastodon import FakeMastodon


@pytest.fixture
def auth(database_url: str) -> dict[str, str]:
    return bearer(database_url)


def account(client: httpx.Client, auth: dict[str, str], channel: str = "console",
            config: dict[str, Any] | None = None) -> str:
    response = client.post("/v1/accounts", headers=auth,
                           json={"name": f"{channel}-main", "channel": channel, "config": config or {}})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def plan(client: httpx.Client, auth: dict[str, str], account_id: str, media: list[dict[str, Any]]) -> httpx.Response:
    due = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    return client.post("/v1/shares", headers=auth, json={"account_id": account_id, "text": "With a picture",
                                                         "scheduled_at": due, "response_plan": PLAN, "media": media})


# --- uploading and reading ------------------------------------------------------------


def test_a_png_named_jpg_is_stored_as_the_png_it_is_and_served_cacheable(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    data = files.png(30, 20)
    response = files.upload(client, auth, data, name="holiday.jpg", content_type="image/jpeg", alt="A red square",
                            focus="0,-0.5")
    assert response.status_code == 201, response.text
    item = response.json()
    assert (item["mime"], item["kind"], item["width"], item["height"]) == ("image/png", "image", 30, 20)
    assert (item["bytes"], item["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    assert (item["alt"], item["focus"]) == ("A red square", "0,-0.5")
    assert client.get(f"/v1/media/{item['id']}", headers=auth).json() == item

    content = client.get(f"/v1/media/{item['id']}/content", headers=auth)
    assert content.status_code == 200
    assert content.content == data
    assert content.headers["content-type"] == "image/png"
    assert content.headers["etag"] == f'"{item["sha256"]}"'
    assert "max-age" in content.headers["cache-control"]
    assert content.headers["x-content-type-options"] == "nosniff"
    again = client.get(f"/v1/media/{item['id']}/content", headers={**auth, "If-None-Match": content.headers["etag"]})
    assert again.status_code == 304


def test_the_library_lists_newest_first_in_pages_and_changes_alt_and_focus(
    client: httpx.Client, auth: dict[str, str], database_url: str
) -> None:
    ids = [files.uploaded(client, auth, files.png(10 + i, 10))["id"] for i in range(3)]
    first = client.get("/v1/media", headers=auth, params={"limit": 2}).json()
    assert [m["id"] for m in first["items"]] == ids[::-1][:2]
    rest = client.get("/v1/media", headers=auth, params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert ([m["id"] for m in rest["items"]], rest["next_cursor"]) == ([ids[0]], None)

    changed = client.patch(f"/v1/media/{ids[0]}", headers=auth, json={"alt": "Now described", "focus": "0.5,0.5"})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["alt"], changed.json()["focus"]) == ("Now described", "0.5,0.5")
    cleared = client.patch(f"/v1/media/{ids[0]}", headers=auth, json={"focus": None}).json()
    assert (cleared["alt"], cleared["focus"]) == ("Now described", None)
    assert_problem(client.patch(f"/v1/media/{ids[0]}", headers=auth, json={"focus": "2,0"}), 422, "focus")

    reader = bearer(database_url, scope="read")
    assert client.get("/v1/media", headers=reader).status_code == 200
    assert files.upload(client, reader, files.png()).status_code == 403
    assert client.delete(f"/v1/media/{ids[0]}", headers=reader).status_code == 403


def test_the_same_bytes_twice_are_two_items_and_one_stored_blob(
    client: httpx.Client, auth: dict[str, str], database_url: str
) -> None:
    first = files.uploaded(client, auth, alt="first use")
    second = files.uploaded(client, auth, alt="second use")
    assert first["id"] != second["id"]
    assert first["sha256"] == second["sha256"]
    assert files.media_rows(database_url) == (2, 1)
    assert client.delete(f"/v1/media/{first['id']}", headers=auth).status_code == 204
    assert files.media_rows(database_url) == (1, 1)
    assert client.get(f"/v1/media/{second['id']}/content", headers=auth).status_code == 200
    assert client.delete(f"/v1/media/{second['id']}", headers=auth).status_code == 204
    assert files.media_rows(database_url) == (0, 0)
    assert client.get(f"/v1/media/{second['id']}", headers=auth).status_code == 404


def test_gps_is_removed_before_storing_and_the_orientation_kept(client: httpx.Client, auth: dict[str, str]) -> None:
    sent = files.photo_with_location()
    item = files.uploaded(client, auth, sent, name="IMG_0001.JPG", content_type="image/jpeg")
    kept = client.get(f"/v1/media/{item['id']}/content", headers=auth).content
    exif = files.exif_of(kept)
    assert ExifTags.IFD.GPSInfo not in exif
    assert not exif.get_ifd(ExifTags.IFD.GPSInfo)
    assert exif.get(files.ORIENTATION) == 6
    assert item["sha256"] == hashlib.sha256(kept).hexdigest()
    assert item["mime"] == "image/jpeg"


def test_an_mp4_and_an_animated_gif_are_taken(client: httpx.Client, auth: dict[str, str]) -> None:
    video = files.uploaded(client, auth, files.mp4(640, 360), name="clip.mp4", content_type="video/mp4")
    assert (video["kind"], video["mime"], video["width"], video["height"]) == ("video", "video/mp4", 640, 360)
    gif = files.uploaded(client, auth, files.animated_gif(), name="loop.gif", content_type="image/gif")
    assert (gif["kind"], gif["mime"]) == ("gif", "image/gif")


# --- hostile uploads ----------------------------------------------------------------------

HOSTILE = {
    "decompression bomb": (lambda: files.png_bomb(20_000), 422),
    "truncated": (lambda: files.noisy_png(64, 64)[:-40], 422),
    "zero bytes": (lambda: b"", 422),
    "png/zip polyglot": (lambda: files.png() + files.zip_archive(), 415),
    "svg": (lambda: files.SVG, 415),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_upload_gets_a_clear_4xx_and_nothing_is_stored(
    client: httpx.Client, auth: dict[str, str], database_url: str, name: str
) -> None:
    make, status = HOSTILE[name]
    response = files.upload(client, auth, make(), name="innocent.png", content_type="image/png")
    assert_problem(response, status, "file")
    assert files.media_rows(database_url) == (0, 0)


def test_an_upload_without_a_file_or_not_multipart_is_refused(client: httpx.Client, auth: dict[str, str]) -> None:
    assert_problem(client.post("/v1/media", headers=auth, files={"alt": (None, b"x")}), 422, "file")
    assert_problem(client.post("/v1/media", headers=auth, json={"file": "x"}), 415, "body")
    assert_problem(files.upload(client, auth, files.png(), focus="left"), 422, "focus")


@pytest.fixture
def small_settings(settings: Settings) -> Settings:
    """Uploads of at most 1 MiB (images) and 2 MiB (video); a 1 MiB quota."""
    return settings.model_copy(update={"media_max_image_mb": 1.0, "media_max_video_mb": 2.0, "media_quota_mb": 1.0})


@pytest.fixture
def small(small_settings: Settings) -> Iterator[httpx.Client]:
    with api_client(small_settings) as c:
        yield c


def answer_while_sending(base_url: str, auth: dict[str, str], total: int, *, chunked: bool) -> tuple[str, int]:
    """POST a ``total``-byte upload as a client that keeps writing until the server answers;
    the answer's first line and how many body bytes had been written by then."""
    host, port = base_url.removeprefix("http://").split(":")
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    head = (f"POST /v1/media HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth['Authorization']}\r\n"
            f"Content-Type: multipart/form-data; boundary=b\r\n{framing}\r\n\r\n")
    preamble = b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n\r\n'
    piece = b"x" * 65_536

    def framed(data: bytes) -> bytes:
        return f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data

    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as raw:
        raw.sendall(head.encode() + framed(preamble))
        while sent < total and not select.select([raw], [], [], 0)[0]:
            try:
                raw.sendall(framed(piece))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
        answer = raw.recv(65_536).decode(errors="replace")
    return answer.split("\r\n", 1)[0], sent


def kernel_buffers() -> int:
    """The most a TCP connection's send and receive buffers may grow to here (Linux's sysctls)."""
    def most(name: str) -> int:
        return int(Path(f"/proc/sys/net/ipv4/{name}").read_text().split()[2])
    return most("tcp_wmem") + most("tcp_rmem")


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_oversized_upload_is_refused_413_before_half_of_it_is_sent(
    small: httpx.Client, small_settings: Settings, database_url: str, chunked: bool
) -> None:
    # Given a client writing a body twice as large as the server can take in before it answers:
    # the 2 MiB bound, the refused rest it drains, and what loopback's kernel buffers hold
    # (tcp_rmem's maximum reaches 32 MiB on some machines: a fixed 25 MB once failed there)
    bounds = api_config(small_settings)
    most = bounds.max_media_body_bytes + bounds.drain_body_bytes + kernel_buffers()
    first_line, sent = answer_while_sending(str(small.base_url).rstrip("/"), bearer(database_url), 2 * most,
                                            chunked=chunked)
    # Then the 413 came while half of the body was still unsent, and nothing is stored
    assert " 413 " in first_line, first_line
    assert sent <= most, (sent, most)
    assert files.media_rows(database_url) == (0, 0)


def test_an_image_over_the_image_limit_is_413_even_under_the_video_limit(
    small: httpx.Client, database_url: str
) -> None:
    big = files.noisy_png(700, 700)  # about 1.5 MB: over 1 MiB, under the 2 MiB bound of the route
    assert_problem(files.upload(small, bearer(database_url), big), 413, "file")
    assert files.media_rows(database_url) == (0, 0)


def test_the_quota_refuses_new_bytes_but_not_a_second_item_of_stored_bytes(
    small: httpx.Client, database_url: str
) -> None:
    auth = bearer(database_url)
    first = files.noisy_png(330, 330, seed=1)  # about 330 KB each: three fit in 1 MiB, four do not
    for seed in (1, 2, 3):
        files.uploaded(small, auth, files.noisy_png(330, 330, seed=seed))
    response = files.upload(small, auth, files.noisy_png(330, 330, seed=4))
    assert_problem(response, 409, "file")
    assert response.json()["type"] == "urn:followthrough:problem:media-quota-exceeded"
    assert files.uploaded(small, auth, first)["sha256"] == hashlib.sha256(first).hexdigest()
    assert files.media_rows(database_url) == (4, 3)
    # Another workspace has its own quota
    assert files.upload(small, bearer(database_url, "other"), files.noisy_png(330, 330, seed=4)).status_code == 201


# --- media on shares ----------------------------------------------------------------------


def test_a_share_carries_its_media_with_alt_and_an_image_without_alt_is_refused(
    client: httpx.Client, auth: dict[str, str], database_url: str
) -> None:
    console = account(client, auth)
    described = files.uploaded(client, auth, files.png(12, 12), alt="A described square")
    bare = files.uploaded(client, auth, files.png(13, 13), alt=None)
    before = stored(database_url)
    refused = plan(client, auth, console, [{"id": described["id"]}, {"id": bare["id"]}])
    assert_problem(refused, 422, "media.1.alt")
    assert_problem(plan(client, auth, console, [{"id": bare["id"], "alt": ""}]), 422, "media.0.alt")
    assert stored(database_url) == before

    planned = plan(client, auth, console, [{"id": described["id"]}, {"id": bare["id"], "alt": "", "decorative": True}])
    assert planned.status_code == 201, planned.text
    share = client.get(f"/v1/shares/{planned.json()['id']}", headers=auth).json()
    assert [(m["id"], m["alt"], m["decorative"], m["mime"]) for m in share["media"]] == [
        (described["id"], "A described square", False, "image/png"), (bare["id"], "", True, "image/png")]


def test_a_media_item_is_not_deleted_while_a_planned_share_uses_it(
    client: httpx.Client, auth: dict[str, str], database_url: str
) -> None:
    item = files.uploaded(client, auth)
    share = plan(client, auth, account(client, auth), [{"id": item["id"]}]).json()
    assert_problem(client.delete(f"/v1/media/{item['id']}", headers=auth), 409, "id")
    assert files.media_rows(database_url) == (1, 1)
    assert client.post(f"/v1/shares/{share['id']}/cancel", headers=auth).status_code == 200
    assert client.delete(f"/v1/media/{item['id']}", headers=auth).status_code == 204
    assert files.media_rows(database_url) == (0, 0)


def plan_thread(client: httpx.Client, auth: dict[str, str], account_id: str, parts: list[dict[str, Any]],
                **more: Any) -> httpx.Response:
    due = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    return client.post("/v1/shares", headers=auth, json={"account_id": account_id, "parts": parts,
                                                         "scheduled_at": due, "response_plan": PLAN, **more})


def test_a_threads_parts_carry_their_own_media_checked_per_part_and_held_while_planned(
    client: httpx.Client, auth: dict[str, str], database_url: str
) -> None:
    console = account(client, auth)
    described = files.uploaded(client, auth, files.png(12, 12), alt="A described square")
    bare = files.uploaded(client, auth, files.png(13, 13), alt=None)
    before = stored(database_url)
    # A part's image without alt is refused naming that part's item
    parts = [{"text": "1/"}, {"text": "2/", "media": [{"id": described["id"]}]},
             {"text": "3/", "media": [{"id": bare["id"]}]}]
    assert_problem(plan_thread(client, auth, console, parts), 422, "parts.2.media.0.alt")
    # The share's media are the first part's: given there and in parts.0.media, refused naming media
    both = [{"text": "1/", "media": [{"id": described["id"]}]}, {"text": "2/"}]
    assert_problem(plan_thread(client, auth, console, both, media=[{"id": described["id"]}]), 422, "media")
    # The same through a post: its shares take parts as a share does
    body = {"parts": parts, "response_plan": PLAN, "accounts": [{"account_id": console}]}
    assert_problem(client.post("/v1/posts", headers=auth, json=body), 422, "accounts.0.parts.2.media.0.alt")
    assert stored(database_url) == before
    # Described, the thread is planned and GET shows each part's media under it
    parts[2]["media"] = [{"id": bare["id"], "alt": "A bare square, described now"}]
    planned = plan_thread(client, auth, console, parts)
    assert planned.status_code == 201, planned.text
    share = client.get(f"/v1/shares/{planned.json()['id']}", headers=auth).json()
    assert share["media"] == []
    assert [[(m["id"], m["alt"]) for m in p["media"]] for p in share["parts"]] == [
        [], [(described["id"], "A described square")], [(bare["id"], "A bare square, described now")]]
    # And an item a part uses is not deleted while the thread is planned
    assert_problem(client.delete(f"/v1/media/{bare['id']}", headers=auth), 409, "id")
    assert client.post(f"/v1/shares/{share['id']}/cancel", headers=auth).status_code == 200
    assert client.delete(f"/v1/media/{bare['id']}", headers=auth).status_code == 204


def test_a_one_part_threads_media_are_the_posts(client: httpx.Client, auth: dict[str, str]) -> None:
    item = files.uploaded(client, auth)
    planned = plan_thread(client, auth, account(client, auth), [{"text": "alone", "media": [{"id": item["id"]}]}])
    assert planned.status_code == 201, planned.text
    assert (planned.json()["parts"], [m["id"] for m in planned.json()["media"]]) == (None, [item["id"]])
    assert_problem(client.delete(f"/v1/media/{item['id']}", headers=auth), 409, "id")


def test_workspaces_do_not_see_or_use_each_others_media(client: httpx.Client, database_url: str) -> None:
    acme, other = bearer(database_url, "acme"), bearer(database_url, "other")
    item = files.uploaded(client, acme)
    for path in (f"/v1/media/{item['id']}", f"/v1/media/{item['id']}/content"):
        assert client.get(path, headers=other).status_code == 404
    assert client.patch(f"/v1/media/{item['id']}", headers=other, json={"alt": "mine"}).status_code == 404
    assert client.delete(f"/v1/media/{item['id']}", headers=other).status_code == 404
    assert client.get("/v1/media", headers=other).json()["items"] == []
    assert_problem(plan(client, other, account(client, other), [{"id": item["id"]}]), 422, "media.0.id")
    assert client.get(f"/v1/media/{item['id']}", headers=acme).json()["alt"] == "A red square"


def test_mastodon_instance_limits_and_bluesky_video_are_enforced_at_planning(
    client: httpx.Client, auth: dict[str, str], mastodon: FakeMastodon
) -> None:
    mastodon.knobs.description_limit = 20
    mastodon.knobs.max_media_attachments = 2
    toot = account(client, auth, "mastodon", {"base_url": mastodon.base_url, "access_token_env": "FT_TOKEN"})
    images = [files.uploaded(client, auth, files.png(20 + i, 20), alt="Short alt")["id"] for i in range(3)]
    assert_problem(plan(client, auth, toot, [{"id": i} for i in images]), 422, "media")
    long_alt = plan(client, auth, toot, [{"id": images[0], "alt": "x" * 21}])
    assert_problem(long_alt, 422, "media.0.alt")
    assert "20" in long_alt.json()["detail"]
    assert plan(client, auth, toot, [{"id": i} for i in images[:2]]).status_code == 201

    video = files.uploaded(client, auth, files.mp4(), name="clip.mp4", content_type="video/mp4", alt="A clip")["id"]
    assert_problem(plan(client, auth, toot, [{"id": video}, {"id": images[0]}]), 422, "media")
    assert plan(client, auth, toot, [{"id": video}]).status_code == 201

    sky = account(client, auth, "bluesky", {"handle": "team.example.com"})
    refused = plan(client, auth, sky, [{"id": video}])
    assert_problem(refused, 422, "media.0.id")
    assert "video service" in refused.json()["detail"]


def test_a_worker_reads_an_items_bytes_and_description_in_its_workspace_only(
    client: httpx.Client, auth: dict[str, str], database_url: str
) -> None:
    sent = files.photo_with_location()
    item = files.uploaded(client, auth, sent, alt="A blue photo", focus="0.25,-1")
    with connect(database_url) as conn:
        content = library.for_publishing(conn, "acme", UUID(item["id"]))
        with pytest.raises(NotFoundError):
            library.for_publishing(conn, "other", UUID(item["id"]))
    assert (content.mime, content.kind, content.width, content.height) == ("image/jpeg", "image", 64, 48)
    assert (content.alt, content.focus) == ("A blue photo", (0.25, -1.0))
    assert hashlib.sha256(content.data).hexdigest() == content.sha256 == item["sha256"]
    assert ExifTags.IFD.GPSInfo not in files.exif_of(content.data)


def test_an_upload_with_an_unknown_field_is_refused_naming_it(client: httpx.Client, auth: dict[str, str]) -> None:
    response = client.post("/v1/media", headers=auth, files={"file": ("a.png", files.png(), "image/png")},
                           data={"alt": "x", "caption": "y"})
    assert_problem(response, 422, "caption")
