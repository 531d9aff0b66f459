"""Fixtures of the integration tests: a receiver on loopback, the API serving the test's
settings (``client``), and a plain HTTP client for the webhook deliverer. A test module's own
fixture of the same name (an API test with other settings) takes precedence over these."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from followthrough.settings import Settings
from tests.support.api import api_client
from tests.support.webhook_receiver import Receiver, receiving


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


@pytest.fixture
def client(settings: Settings) -> Iterator[httpx.Client]:
    with api_client(settings) as c:
        yield c


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as c:
        yield c
