"""The operator's commands start at once: each imports only what it runs, never the server
roles' libraries (Dramatiq, httpx, FastAPI, Jinja). Each runs in a fresh interpreter, as a
person starts it, against a migrated database."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import orjson
import pytest

from tests.support.cli import command_env

pytestmark = pytest.mark.e2e

SERVER_LIBRARIES = ("fastapi", "dramatiq", "httpx", "jinja2")

# Runs the CLI's entry point in this interpreter, then reports which modules it loaded
# (stdout is the command's; the modules go to stderr's last line).
PROBE = """
import sys, json
from followthrough.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit_:
    code = exit_.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def loaded(*args: str, env: dict[str, str]) -> tuple[int, set[str]]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    found = orjson.loads(done.stderr.strip().splitlines()[-1])
    return found["code"], {name.partition(".")[0] for name in found["modules"]}


@pytest.fixture
def env(database_url: str, broker_url: str, tmp_path: Any) -> dict[str, str]:
    return command_env(database_url, broker_url, tmp_path)


@pytest.mark.parametrize("command", [
    ("--help",),
    ("token", "list", "--workspace", "acme"),
    ("audit", "--format", "json"),
    ("report", "--workspace", "acme", "--format", "json"),
    ("projections", "status", "--format", "json"),
], ids=" ".join)
def test_an_operators_command_loads_none_of_the_server_roles_libraries(
    command: tuple[str, ...], env: dict[str, str]
) -> None:
    code, modules = loaded(*command, env=env)
    assert code == 0
    assert modules.isdisjoint(SERVER_LIBRARIES), sorted(modules.intersection(SERVER_LIBRARIES))


def test_the_probe_sees_what_a_command_loads(env: dict[str, str]) -> None:
    """The listing is the command's own: `token list` brings the database driver, `--help` does not."""
    _, listing = loaded("token", "list", "--workspace", "acme", env=env)
    _, helping = loaded("--help", env=env)
    assert "psycopg" in listing
    assert "psycopg" not in helping
