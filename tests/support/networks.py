"""The fake networks as fixtures (a pytest plugin, see ``tests/conftest.py``): one fake
Mastodon and one fake Bluesky served per test module, handed to each test reset, and the
HTTP client a publisher talks to them with."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

import httpx
import pytest

from tests.support.fake_bluesky import FakeBluesky
from tests.support.fake_mastodon import FakeMastodon
from tests.support.servers import serve

Fake = TypeVar("Fake", FakeMastodon, FakeBluesky)


def served(fake: Fake) -> Iterator[Fake]:
    with serve(fake.build()) as url:
        fake.base_url = url
        yield fake


@pytest.fixture(scope="module")
def mastodon_server() -> Iterator[FakeMastodon]:
    yield from served(FakeMastodon())


@pytest.fixture(scope="module")
def bluesky_server() -> Iterator[FakeBluesky]:
    yield from served(FakeBluesky())


@pytest.fixture
def mastodon(mastodon_server: FakeMastodon) -> FakeMastodon:
    mastodon_server.reset()
    return mastodon_server


@pytest.fixture
def bluesky(bluesky_server: FakeBluesky) -> FakeBluesky:
    bluesky_server.reset()
    return bluesky_server


@pytest.fixture
def network_client() -> Iterator[httpx.Client]:
    """A publisher's client: an answer slower than 2 s is a timeout (the hostile fakes' hangs)."""
    with httpx.Client(timeout=httpx.Timeout(5.0, read=2.0)) as client:
        yield client
