"""Errors of the scheduler package. HTTP status codes live only in the API's handlers."""

from __future__ import annotations


class SchedulerError(Exception):
    """Base class of the scheduler's errors."""


class InvalidInputError(SchedulerError):
    """Input that breaks a rule; ``field`` names where (dotted path, e.g. ``response_plan.0.after``)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class NotFoundError(SchedulerError):
    def __init__(self, kind: str, ident: str) -> None:
        self.kind = kind
        self.ident = ident
        super().__init__(f"{kind} {ident} not found")


class ConflictError(SchedulerError):
    """The request is valid but the thing is in a state that does not allow it."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.message = message
        self.field = field
        super().__init__(message)


class ForbiddenError(SchedulerError):
    """This caller may not do this (not an approver, or four eyes); the message says why."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class IdempotencyKeyReusedError(SchedulerError):
    """An ``Idempotency-Key`` came back with a different request body."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"Idempotency-Key {key!r} was used for a different request")


class ConfigurationError(SchedulerError):
    """Settings that cannot work; the message says how to fix them."""


class UnsupportedMediaError(InvalidInputError):
    """A file of a type that is not taken (SVG, a polyglot, anything not JPEG/PNG/WebP/GIF/MP4)."""


class ContentTooLargeError(InvalidInputError):
    """A file over the size limit of its kind."""


class QuotaExceededError(ConflictError):
    """Storing this would take the workspace past its media quota."""
