"""The `followthrough` command run in the test's own process, as `followthrough ARGS` runs it:
the same entry point (``followthrough.cli.main``) with the given environment, its stdout and
stderr captured, its exit code. A fresh interpreter per command costs seconds of imports;
the tests of the process itself (its imports, signals, start-up) still start one."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import structlog

from followthrough.cli import main


@dataclass(frozen=True, slots=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def command_env(database_url: str | None, broker_url: str | None, home: Path | str | None = None,
                **more: str) -> dict[str, str]:
    """The environment an operator's shell gives the command: both servers, JSON logs."""
    env = {**os.environ, "DATABASE_URL": database_url or "", "BROKER_URL": broker_url or "",
           "FOLLOWTHROUGH_LOG_FORMAT": "json", **more}
    if home is not None:
        env["FOLLOWTHROUGH_HOME"] = str(home)
    return env


def cli(*args: str, env: Mapping[str, str]) -> Ran:
    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(os.environ, env, clear=True), logging_restored(), redirect_stdout(out), \
            redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit_:  # argparse's answer to bad arguments, and --help
            code = exit_.code if isinstance(exit_.code, int) else 1
    return Ran(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


@contextmanager
def logging_restored() -> Iterator[None]:
    """The command configures logging for itself (to its stderr); the tests' configuration
    comes back afterwards. Its loggers are not cached: a logger cached on the command's
    stderr would keep writing there, unseen by the next test's ``capture_logs``."""
    configure = structlog.configure
    saved: dict[str, Any] = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    named = {name: (logger.level, logger.handlers[:], logger.propagate)
             for name, logger in logging.root.manager.loggerDict.items() if isinstance(logger, logging.Logger)}

    def uncached(**kwargs: Any) -> None:
        configure(**{**kwargs, "cache_logger_on_first_use": False})

    try:
        with mock.patch.object(structlog, "configure", uncached):
            yield
    finally:
        configure(**saved)
        root.handlers[:], root.level = handlers, level
        for name, (was_level, was_handlers, was_propagate) in named.items():
            logger = logging.getLogger(name)
            logger.level, logger.handlers[:], logger.propagate = was_level, was_handlers, was_propagate
