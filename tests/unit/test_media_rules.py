"""Media attached to a post, checked at planning (pure): alt text required unless decorative,
the network's alt limit, how many items and of which kinds."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from scheduler.domain.media import (
    BLUESKY_ALT_CHARACTERS,
    MASTODON_ALT_CHARACTERS,
    LibraryItem,
    MediaKind,
    MediaRequest,
    check_media,
    media_limit_for,
)
from scheduler.errors import InvalidInputError
from workers.channels.mastodon import instance_media_limit


def items(*kinds: MediaKind, alt: str = "") -> dict[UUID, LibraryItem]:
    made = [LibraryItem(uuid4(), kind, "video/mp4" if kind == "video" else "image/png", alt) for kind in kinds]
    return {m.media_id: m for m in made}


def ask(library: dict[UUID, LibraryItem], alt: str | None = "A description", **kw: bool) -> list[MediaRequest]:
    return [MediaRequest(media_id=i, alt=alt, **kw) for i in library]


def refusal(channel: str, requested: list[MediaRequest], library: dict[UUID, LibraryItem],
            instance: tuple[int | None, int | None] | None = None, field: str = "media") -> InvalidInputError:
    with pytest.raises(InvalidInputError) as caught:
        check_media(channel, requested, library, media_limit_for(channel, instance), field=field)
    return caught.value


@pytest.mark.parametrize("channel", ["mastodon", "bluesky", "console"])
def test_an_image_without_alt_is_refused_naming_the_item(channel: str) -> None:
    library = items("image", "image")
    requested = ask(library)
    requested[1] = MediaRequest(media_id=requested[1].media_id)  # no alt here nor in the library
    assert refusal(channel, requested, library).field == "media.1.alt"


def test_a_thread_part_names_its_own_field() -> None:
    library = items("image")
    assert refusal("mastodon", ask(library, alt=" "), library, field="parts.2.media").field == "parts.2.media.0.alt"


def test_the_library_alt_stands_in_and_the_share_alt_wins() -> None:
    library = items("image", "image", alt="From the library")
    first, second = ask(library, alt=None)
    shared = check_media("mastodon", [first, MediaRequest(second.media_id, alt="Own words")], library,
                         media_limit_for("mastodon"))
    assert [m.alt for m in shared] == ["From the library", "Own words"]


def test_an_empty_alt_is_allowed_only_for_a_decorative_image() -> None:
    library = items("image", alt="The library's words")
    shared = check_media("bluesky", ask(library, alt="", decorative=True), library, media_limit_for("bluesky"))
    assert [(m.alt, m.decorative) for m in shared] == [("", True)]
    assert refusal("bluesky", ask(library, alt="", decorative=False), library).field == "media.0.alt"
    assert refusal("bluesky", ask(library, alt="words", decorative=True), library).field == "media.0.alt"


@pytest.mark.parametrize(("channel", "instance", "limit"), [
    ("mastodon", None, MASTODON_ALT_CHARACTERS),
    ("mastodon", (None, 4000), 4000),
    ("bluesky", None, BLUESKY_ALT_CHARACTERS),
])
def test_the_alt_is_held_to_the_network_limit(channel: str, instance: tuple[int | None, int | None] | None,
                                              limit: int) -> None:
    library = items("image")
    check_media(channel, ask(library, alt="a" * limit), library, media_limit_for(channel, instance))
    problem = refusal(channel, ask(library, alt="a" * (limit + 1)), library, instance)
    assert problem.field == "media.0.alt"
    assert str(limit) in problem.message


def test_up_to_four_images_or_what_the_instance_says() -> None:
    four, five = items(*["image"] * 4), items(*["image"] * 5)
    assert len(check_media("mastodon", ask(four), four, media_limit_for("mastodon"))) == 4
    assert refusal("mastodon", ask(five), five).field == "media"
    six = items(*["image"] * 6)
    assert len(check_media("mastodon", ask(six), six, media_limit_for("mastodon", (6, None)))) == 6
    assert refusal("mastodon", ask(four), four, instance=(2, None)).field == "media"


@pytest.mark.parametrize("kind", ["video", "gif"])
def test_a_video_or_animated_gif_goes_alone_on_mastodon(kind: MediaKind) -> None:
    alone = items(kind)
    assert [m.kind for m in check_media("mastodon", ask(alone), alone, media_limit_for("mastodon"))] == [kind]
    mixed = items(kind, "image")
    assert refusal("mastodon", ask(mixed), mixed).field == "media"


@pytest.mark.parametrize("kind", ["video", "gif"])
def test_bluesky_refuses_video_saying_it_needs_a_video_service(kind: MediaKind) -> None:
    library = items(kind)
    problem = refusal("bluesky", ask(library), library)
    assert problem.field == "media.0.id"
    assert "video service" in problem.message
    assert "PDS" in problem.message


def test_an_unknown_or_repeated_item_is_refused() -> None:
    library = items("image")
    assert refusal("mastodon", [MediaRequest(uuid4(), alt="x")], library).field == "media.0.id"
    twice = ask(library) * 2
    assert refusal("mastodon", twice, library).field == "media.1.id"


@pytest.mark.parametrize(("body", "found"), [
    ({"configuration": {"statuses": {"max_media_attachments": 6},
                        "media_attachments": {"description_limit": 4000}}}, (6, 4000)),
    ({"configuration": {"statuses": {"max_media_attachments": 4}}}, (4, None)),
    ({"configuration": {"media_attachments": {"description_limit": 0}}}, None),
    ({"max_toot_chars": 5000}, None),
    ([], None),
])
def test_what_a_mastodon_instance_says_of_its_media(body: object, found: tuple[int | None, int | None] | None) -> None:
    assert instance_media_limit(body) == found
