"""Signing secrets at rest: sealed with Fernet (AES-128-CBC + HMAC-SHA256, from the
``cryptography`` package) before they reach the database, opened only by the deliverer
to sign. Several keys allow rotation: the first seals, any of them opens, and ``reseal``
moves a stored secret to the first key.

A stolen database dump (or a dashboard role reading tables) then yields no secret that
can forge our signatures without the key, which lives in the roles' environment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from scheduler.errors import ConfigurationError, SchedulerError

PREFIX = "fernet:"


class SecretUnreadableError(SchedulerError):
    """A stored secret that none of the configured keys opens (a key was removed or changed)."""


def generate_key() -> str:
    return Fernet.generate_key().decode()


class SecretBox:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ConfigurationError("no webhook secret key: set FOLLOWTHROUGH_WEBHOOK_SECRET_KEYS")
        try:
            self._fernet = MultiFernet([Fernet(key.strip().encode()) for key in keys])
        except ValueError as exc:
            raise ConfigurationError(
                "FOLLOWTHROUGH_WEBHOOK_SECRET_KEYS must be comma-separated Fernet keys (32 url-safe base64 bytes; "
                "see docs/webhooks.md)"
            ) from exc

    @classmethod
    def from_setting(cls, value: str) -> SecretBox:
        return cls([k for k in value.split(",") if k.strip()])

    def seal(self, secret: str) -> str:
        return PREFIX + self._fernet.encrypt(secret.encode()).decode()

    def open(self, stored: str) -> str:
        return self._with_token(stored, self._fernet.decrypt).decode()

    def reseal(self, stored: str) -> str:
        """The same secret sealed again under the first key (``MultiFernet.rotate``), so the
        keys after it can be retired."""
        return PREFIX + self._with_token(stored, self._fernet.rotate).decode()

    @staticmethod
    def _with_token(stored: str, step: Callable[[bytes], bytes]) -> bytes:
        """``step`` applied to a stored secret's Fernet token; unreadable if unsealed or no key opens it."""
        if not stored.startswith(PREFIX):
            raise SecretUnreadableError("the stored secret is not sealed")
        try:
            return step(stored.removeprefix(PREFIX).encode())
        except InvalidToken:
            raise SecretUnreadableError("no configured key opens this secret") from None

    def __repr__(self) -> str:
        return "SecretBox(keys=[redacted])"
