"""Schemathesis over the live OpenAPI: examples, coverage, fuzzing and stateful phases with
every check, a fixed seed and a bounded budget; it must find nothing.

``schemathesis.toml`` (at the root) says why a 422 is a fine answer to schema-valid data.
``DELETE /v1/tokens/{id}`` is left out: stateful runs would revoke the token they run with
(revocation is covered by the token tests).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from followthrough.settings import Settings
from tests.support.api import api_client, bearer

pytestmark = pytest.mark.slow  # about 100 s: in `make test`, not in `make check`

ROOT = Path(__file__).resolve().parents[2]
SEED = "20261130"
BUDGET_SECONDS = "75"


@pytest.fixture
def client(settings: Settings) -> Iterator[httpx.Client]:
    # Rate limits off: the fuzzer sends hundreds of requests a second from one address.
    with api_client(settings.model_copy(update={"rate_limit_enabled": False})) as c:
        yield c


def test_schemathesis_finds_nothing_over_the_live_openapi(
    client: httpx.Client, database_url: str, tmp_path: Path
) -> None:
    # Given the API serving its OpenAPI, and a write token
    auth = bearer(database_url)["Authorization"]
    # When Schemathesis runs every phase and every check against it
    run = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{client.base_url}/openapi.json",
         "--checks", "all", "--header", f"Authorization: {auth}", "--seed", SEED, "--max-examples", "20",
         "--max-time", BUDGET_SECONDS, "--generation-database", "none", "--suppress-health-check", "all",
         "--exclude-method", "DELETE", "--no-color", "--workers", "1",
         "--report", "junit", "--report-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,  # cwd: finds schemathesis.toml
    )
    # Then it reports no failure
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    assert "passed" in run.stdout
