"""What the HTTP channels share: account URLs and secrets from config, and HTTP failures
translated into channel errors (permanent, or transient with Retry-After)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from workers.channels import ChannelError, PermanentChannelError, TransientChannelError

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def base_url_of(value: Any, network: str, key: str, *, example: str) -> str:
    """An https URL from account config (plain http only to this machine, for tests and proxies)."""
    parts = urlsplit(value) if isinstance(value, str) else None
    if (
        parts is None
        or not parts.hostname
        or not (parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK))
    ):
        raise PermanentChannelError(f"{network} account config needs {key}: an https URL such as {example}")
    return str(value).rstrip("/")


def secret_from_env(
    config: Mapping[str, Any], key: str, env: Mapping[str, str], *, network: str, account: str, what: str
) -> str:
    """The secret held by the environment variable that ``config[key]`` names."""
    env_name = config.get(key)
    if not isinstance(env_name, str) or not env_name:
        raise PermanentChannelError(
            f"{network} account config needs {key}: the name of the environment variable that holds {what}"
        )
    secret = env.get(env_name, "").strip()
    if not secret:
        raise PermanentChannelError(
            f"environment variable {env_name} ({key} of {network} account {account!r}) is not set or empty"
        )
    return secret


@dataclass(frozen=True, slots=True)
class ChannelHttp:
    """Calls to one network whose failures become channel errors that never show ``secrets``.

    ``may_publish`` says whether the request can create a post: then a failure after the
    request may have reached the server is marked ``outcome_unknown``.
    """

    client: httpx.Client
    network: str
    secrets: tuple[str, ...]

    def send(self, method: str, url: str, *, may_publish: bool = False, **kwargs: Any) -> httpx.Response:
        try:
            return self.client.request(method, url, **kwargs)
        except httpx.UnsupportedProtocol as exc:
            raise PermanentChannelError(f"{self.network}: cannot call {urlsplit(url).scheme!r} URLs") from exc
        except (httpx.ConnectTimeout, httpx.ConnectError, httpx.PoolTimeout) as exc:
            # Nothing was sent: the connection was never made (or never taken from the pool).
            raise TransientChannelError(f"{self.network} not reachable ({_kind(exc)})") from exc
        except httpx.TimeoutException as exc:
            raise TransientChannelError(
                f"{self.network} did not answer in time ({_kind(exc)})", outcome_unknown=may_publish
            ) from exc
        except httpx.TransportError as exc:
            raise TransientChannelError(
                f"connection to {self.network} failed ({_kind(exc)})", outcome_unknown=may_publish
            ) from exc

    def answer(self, response: httpx.Response, *, may_publish: bool = False) -> Any:
        """The JSON body of a successful answer, or the failure raised."""
        if not response.is_success:
            raise self.failure(response, may_publish=may_publish)
        try:
            return response.json()
        except ValueError:
            raise self.malformed("its answer is not JSON", may_publish=may_publish) from None

    def failure(self, response: httpx.Response, *, may_publish: bool = False) -> ChannelError:
        status = response.status_code
        error, message = error_fields(response)
        detail = ": ".join(part for part in (error, message) if part)
        reason = self.redact(f"{self.network} answered {status}" + (f": {detail}" if detail else ""))
        if status in (408, 429):  # refused before any work: nothing was published
            return TransientChannelError(reason, retry_after=retry_after(response.headers))
        if status >= 500:
            return TransientChannelError(reason, retry_after=retry_after(response.headers), outcome_unknown=may_publish)
        if status in (401, 403):
            return PermanentChannelError(f"{reason} (check the credentials and their scopes)")
        return PermanentChannelError(reason)

    def malformed(self, what: str, *, may_publish: bool = False) -> TransientChannelError:
        return TransientChannelError(f"{self.network}: unexpected answer, {what}", outcome_unknown=may_publish)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "[redacted]")
        return text[:300]


def error_fields(response: httpx.Response) -> tuple[str, str]:
    """``error`` and ``message`` (XRPC) or ``error`` and ``error_description`` (Mastodon)."""
    try:
        body = response.json()
    except ValueError:
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    error, message = body.get("error"), body.get("message") or body.get("error_description")
    return (error if isinstance(error, str) else ""), (message if isinstance(message, str) else "")


def still_unknown(exc: TransientChannelError) -> TransientChannelError:
    """A failed reconciliation leaves the earlier attempt's outcome as unknown as it was."""
    return TransientChannelError(exc.reason, retry_after=exc.retry_after, outcome_unknown=True)


def retry_after(headers: httpx.Headers, now: datetime | None = None) -> timedelta | None:
    """How long the network asks us to wait: ``Retry-After`` (seconds or an HTTP date), else
    when its rate-limit window resets (Mastodon: ``X-RateLimit-Reset``, an ISO 8601 time;
    Bluesky: ``RateLimit-Reset``, Unix seconds)."""
    now = now or datetime.now(UTC)
    value = headers.get("retry-after", "").strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    when = _http_date(value) or parse_time(headers.get("x-ratelimit-reset"))
    reset = headers.get("ratelimit-reset", "").strip()
    if when is None and reset.isdigit():
        seconds = int(reset)
        # The IETF draft sends seconds to wait; Bluesky sends the Unix time of the reset.
        when = datetime.fromtimestamp(seconds, UTC) if seconds > 10**9 else now + timedelta(seconds=seconds)
    return max(when - now, timedelta(0)) if when else None


def _http_date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _kind(exc: Exception) -> str:
    """A readable name for a transport failure (never its message, which may carry URLs)."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", type(exc).__name__).lower()


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
