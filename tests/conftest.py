"""The suite's configuration: fixtures come from ``tests/support/fixtures.py`` (servers,
databases) and ``tests/support/networks.py`` (the fake networks); each
test is marked by the folder it lives in (unit, contract, integration, e2e, faults).

``make test`` runs the suite on several pytest-xdist workers (``--dist loadgroup``). Each
worker has its own template database, queue prefixes and temporary folders; what cannot be
shared runs in one worker, grouped here by the fixture that needs it: the Bluesky dev network
(one per session, started once, in the worker that runs its tests) and the machine's RabbitMQ
(one fault test restarts it, which would break any other test speaking to it meanwhile).
The longest lanes are collected first, so a worker starts them while the others take the
short tests."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.support.fixtures", "tests.support.networks"]

FOLDER_MARKERS = {
    "unit": ("unit",),
    "contract": ("contract",),
    "integration": ("integration",),
    "e2e": ("e2e",),
    "faults": ("faults", "slow"),
}
# Tests needing one of these fixtures run in one xdist worker, one after the other.
ONE_WORKER = {"devnet": "devnet", "rabbitmq_url": "rabbitmq"}
# Folders in the order they are handed out: the fault tests take minutes each, the
# end-to-end ones tens of seconds, the rest seconds.
FIRST = ("faults", "e2e")
HERE = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (it names each test by its group)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, group in ONE_WORKER.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(group))
                break
        folder = _folder(item)
        for name in FOLDER_MARKERS.get(folder, ()):
            item.add_marker(name)
    items.sort(key=_rank)  # stable: the order within each rank is the collection's


def _folder(item: pytest.Item) -> str:
    try:
        return Path(item.path).relative_to(HERE).parts[0]
    except ValueError:
        return ""


def _rank(item: pytest.Item) -> int:
    folder = _folder(item)
    if folder in FIRST:
        return FIRST.index(folder)
    return len(FIRST) + (0 if item.get_closest_marker("xdist_group") else 1)
