"""Logging for operators: structlog everywhere, configured once per process.

JSON lines when the log's stream is not a terminal, the console renderer when it is (a
Dramatiq worker process, whose stream is a pipe to its master, is told by the process that
knows: ``format_for_children``);
the standard library's loggers (dramatiq, uvicorn, psycopg.pool) go through
the same processors; secrets are redacted before anything is rendered.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor

SECRET_KEYS = re.compile(r"(token|secret|password|passwd|authorization|credential|api[-_]?key|private_key)", re.I)
QUERY_SECRET = re.compile(
    r"([?&](?:access_token|refresh_token|token|code|password|secret|api[-_]?key|key)=)[^&\s#]+", re.I
)
URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]*):[^@/\s]+@", re.I)
BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.I)
REDACTED = "[redacted]"


def redact(value: Any) -> Any:
    if isinstance(value, str):
        # Cheap tests first: most values hold neither a URL with credentials nor a header.
        if "@" in value and "://" in value:
            value = URL_PASSWORD.sub(r"\g<scheme>:" + REDACTED + "@", value)
        if "earer" in value or "EARER" in value:
            value = BEARER.sub(r"\1" + REDACTED, value)
        if "=" in value and ("?" in value or "&" in value):
            value = QUERY_SECRET.sub(r"\1" + REDACTED, value)
        return value
    if isinstance(value, dict):
        return {k: REDACTED if _secret_key(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


@functools.lru_cache(maxsize=1024)
def _secret_key(key: str) -> bool:
    return SECRET_KEYS.search(key) is not None


def _may_hold_secret(text: str) -> bool:
    """Whether ``redact`` could change ``text`` (the patterns' cheapest necessary parts)."""
    return "=" in text or "earer" in text or "EARER" in text or ("@" in text and "://" in text)


def redact_secrets(_: Any, __: str, event_dict: EventDict) -> EventDict:
    """Drop the values of secret-looking keys and passwords inside URLs or bearer headers."""
    for key, value in event_dict.items():  # values replaced in place: the keys stay as they are
        if _secret_key(key) and key != "event":
            event_dict[key] = REDACTED
        elif type(value) is str:
            # Most values of a line are plain (ids, names, times): tested in place, not through redact.
            if _may_hold_secret(value):
                event_dict[key] = redact(value)
        elif value is not None and type(value) not in _PLAIN:
            event_dict[key] = redact(value)
    return event_dict


_PLAIN = frozenset({int, bool, float})


def _shared_processors(role: str) -> list[Processor]:
    def add_role(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event_dict.setdefault("role", role)
        return event_dict

    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_role,
        redact_secrets,
    ]


def renderer_choice(fmt: str, out: TextIO, colors: bool | None = None) -> tuple[bool, bool]:
    """(JSON?, colours?) for lines written to ``out``: ``auto`` is the console renderer in a
    terminal and JSON anywhere else (a file, a pipe, the platform's collector); colours
    where the lines reach a terminal (``colors`` says so for a process whose output goes
    through a pipe to one, a Dramatiq worker process)."""
    tty = _isatty(out)
    use_json = fmt == "json" or (fmt == "auto" and not tty)
    return use_json, (not use_json) and (tty if colors is None else colors)


def format_for_children(fmt: str, out: TextIO) -> dict[str, str]:
    """The log format (and colours) a process hands the processes whose lines it passes on to
    ``out`` through a pipe of its own (Dramatiq's master, its worker processes' lines): ``auto``
    decided here, where the terminal is known, not in a process that sees only the pipe."""
    use_json, colors = renderer_choice(fmt, out)
    if use_json:
        return {"FOLLOWTHROUGH_LOG_FORMAT": "json"}
    return {"FOLLOWTHROUGH_LOG_FORMAT": "console", "FOLLOWTHROUGH_LOG_COLORS": "true" if colors else "false"}


def _isatty(out: TextIO) -> bool:
    isatty = getattr(out, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except (ValueError, OSError):  # closed
        return False


# The console's tracebacks, without each frame's locals: those are not redacted (a token in a
# local would be printed), and reading them walks objects other threads are changing (a dict
# that changed size made the log call itself raise, in the call that was being logged).
CONSOLE_TRACEBACK = structlog.dev.RichTracebackFormatter(show_locals=False)


def configure_logging(*, role: str, level: str = "info", fmt: str = "auto", stream: TextIO | None = None,
                      colors: bool | None = None) -> None:
    """Set up structlog and route the standard library's loggers through it.

    Servers log to stdout (the platform collects it); commands whose stdout is their
    output (``token create``, ``report --format json``) pass ``sys.stderr``.
    """
    out = stream or sys.stdout
    use_json, use_colors = renderer_choice(fmt, out, colors)
    renderer: Processor = (
        structlog.processors.JSONRenderer(serializer=_json_line) if use_json
        else structlog.dev.ConsoleRenderer(colors=use_colors, exception_formatter=CONSOLE_TRACEBACK)
    )
    shared = _shared_processors(role)
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    # Our own lines are rendered and written directly (no trip through the standard
    # library's logging machinery: a worker writes one per share, and that trip cost
    # more than the rest of the share's work); foreign ones go through the formatter below.
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info if use_json else _keep,
            renderer,
        ],
        logger_factory=functools.partial(_named_writer, out),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if use_json else _keep,
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # Chatty libraries: their routine lines help nobody at INFO.
    for name in ("uvicorn.access", "httpx", "httpcore", "pika", "pgserver", "alembic.runtime.migration",
                 "alembic.runtime.plugins"):
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    for name in ("uvicorn", "uvicorn.error", "dramatiq", "psycopg", "psycopg.pool"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


class _NamedWriteLogger(structlog.WriteLogger):
    """structlog's thread-safe line writer, with the name that add_logger_name reads."""

    def __init__(self, name: str, out: TextIO) -> None:
        super().__init__(out)
        self.name = name


def _named_writer(out: TextIO, *args: Any) -> _NamedWriteLogger:
    return _NamedWriteLogger(str(args[0]) if args else "followthrough", out)


def _json_line(event_dict: Any, **_: Any) -> str:
    # orjson: a third of a line's cost with the standard library's encoder (workers and the
    # dispatcher write a line per share). Anything it cannot encode is written as its str();
    # what it refuses (an integer past 64 bits) goes through the standard library instead.
    try:
        return orjson.dumps(event_dict, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(event_dict, default=str)


def _keep(_: Any, __: str, event_dict: EventDict) -> EventDict:
    return event_dict
