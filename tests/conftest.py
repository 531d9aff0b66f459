"""The suite's configuration: fixtures come from ``tests/support/fixtures.py`` (servers,
databases) and ``tests/support/networks.py`` (the fake networks); each
test is marked by the folder it lives in (unit, contract, integration, e2e, faults)."""

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
HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        try:
            folder = Path(item.path).relative_to(HERE).parts[0]
        except ValueError:
            continue
        for name in FOLDER_MARKERS.get(folder, ()):
            item.add_marker(name)
