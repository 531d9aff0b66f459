"""The suite's configuration: fixtures come from ``tests/support/fixtures.py`` (servers,
databases) and ``tests/support/networks.py`` (the fake networks); each
test is marked by the folder it lives in (unit, contract, integration, e2e, faults).

``make test`` runs the suite on several pytest-xdist workers, a test file to a worker
(``--dist loadfile``: the Bluesky dev network, started once per session, stays in the worker
that runs its file). Each worker has its own PostgreSQL cluster, queue prefixes and temporary
folders (``tests/support/fixtures.py``). The fault and end-to-end files are handed out first
(``--no-loadscope-reorder`` keeps the order given here), so the longest tests start while the
other workers take the short ones. The machine's RabbitMQ is shared: a test restarting it holds
it alone (``restarts_rabbitmq``), the others share it (``rabbitmq_turn``)."""

from __future__ import annotations

import fcntl
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from followthrough.logs import CONSOLE_TRACEBACK

pytest_plugins = ["tests.support.fixtures", "tests.support.networks"]

FOLDER_MARKERS = {
    "unit": ("unit",),
    "contract": ("contract",),
    "integration": ("integration",),
    "e2e": ("e2e",),
    "faults": ("faults", "slow"),
}
# Folders in the order they are handed out: the fault tests take minutes each, the
# end-to-end ones tens of seconds, the rest seconds.
FIRST = ("faults", "e2e")
HERE = Path(__file__).parent
# One lock for every test run on this machine (xdist workers and other clones alike).
RABBITMQ_LOCK = Path(tempfile.gettempdir()) / "followthrough-tests-rabbitmq.lock"


def pytest_configure(config: pytest.Config) -> None:
    """structlog's defaults, which a test worker logs with until a test configures logging,
    with the product's traceback (``CONSOLE_TRACEBACK``: without each frame's locals). structlog's
    default prints them, walking objects other threads are changing; a worker's
    ``share_call_error`` line raised 'dictionary changed size during iteration' reading a fake
    channel's dict, and the share's outcome was lost to the test."""
    processors = structlog.get_config()["processors"]
    if processors and isinstance(processors[-1], structlog.dev.ConsoleRenderer):
        structlog.configure(processors=[*processors[:-1],
                                        structlog.dev.ConsoleRenderer(exception_formatter=CONSOLE_TRACEBACK)])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for name in FOLDER_MARKERS.get(_folder(item), ()):
            item.add_marker(name)
    items.sort(key=_rank)  # stable: the order within each rank is the collection's


def _folder(item: pytest.Item) -> str:
    try:
        return Path(item.path).relative_to(HERE).parts[0]
    except ValueError:
        return ""


def _rank(item: pytest.Item) -> int:
    folder = _folder(item)
    return FIRST.index(folder) if folder in FIRST else len(FIRST)


@pytest.fixture(autouse=True)
def rabbitmq_turn(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test speaking to the machine's RabbitMQ holds a shared lock for its duration; one
    that restarts it (``restarts_rabbitmq``) an exclusive one, so no other test's connection
    drops in the middle of its run."""
    if "rabbitmq_url" not in request.fixturenames:
        yield
        return
    exclusive = request.node.get_closest_marker("restarts_rabbitmq") is not None
    with RABBITMQ_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
