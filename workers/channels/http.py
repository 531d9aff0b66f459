"""What the HTTP channels share: account URLs and secrets from config, and HTTP failures
translated into channel errors (permanent, or transient with Retry-After)."""

from __future__ import annotations

import html
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from workers.channels import ChannelError, PermanentChannelError, TransientChannelError

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
EXCERPT = 200  # characters of a body that is not the network's JSON error, shown in a reason
_READ = 4000  # characters of such a body looked at (an HTML page's text starts late)
_CREDENTIALS = re.compile(r"token|credential|password|bearer|unauthori[sz]ed|authenticat|login", re.IGNORECASE)
_MARKUP = re.compile(r"<\s*(?:!doctype|html|head|body|title|h1|p|div|center)\b", re.IGNORECASE)
_HIDDEN_MARKUP = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


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
            f"{network} account config needs {key}: the name of the environment variable that holds {what}",
            hint=f"account {account!r} needs {key} in its config (the variable's name, not the secret)",
        )
    secret = env.get(env_name, "").strip()
    if not secret:
        raise PermanentChannelError(
            f"environment variable {env_name} ({key} of {network} account {account!r}) is not set or empty",
            hint=f"set {env_name} to {what} in the workers' environment and restart them, then retry the share "
                 "(POST /v1/shares/{id}/retry)",
        )
    return secret


@dataclass(frozen=True, slots=True)
class ChannelHttp:
    """Calls to one network whose failures become channel errors that never show ``secrets``.

    ``may_publish`` says whether the request can create a post: then a failure after the
    request may have reached the server is marked ``outcome_unknown``. ``secret_key`` is the
    account config key naming the environment variable of the account's secret, which a
    refusal of the credentials tells the reader to check.
    """

    client: httpx.Client
    network: str
    secrets: tuple[str, ...]
    secret_key: str = ""
    before_write: Callable[[], None] | None = None

    def send(self, method: str, url: str, *, may_publish: bool = False, **kwargs: Any) -> httpx.Response:
        if may_publish and self.before_write is not None:
            self.before_write()  # the worker's lease covers this request, or it is not sent
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
            excerpt = self.excerpt(response)
            what = "its answer is not JSON" + (f": {excerpt}" if excerpt else "")
            raise self.malformed(what, may_publish=may_publish) from None

    def failure(self, response: httpx.Response, *, may_publish: bool = False) -> ChannelError:
        """The channel error for an unsuccessful answer, with what the server said in its reason:
        the JSON error fields, else the start of its body (plain text, an HTML error page)."""
        status = response.status_code
        error, message = error_fields(response)
        detail = ": ".join(part for part in (error, message) if part)
        if not detail and not _is_json(response):
            detail = self.excerpt(response)
        reason = self.redact(f"{self.network} answered {status}" + (f": {detail}" if detail else ""))
        if status in (408, 429):  # refused before any work: nothing was published
            return TransientChannelError(reason, retry_after=retry_after(response.headers))
        if status >= 500:
            return TransientChannelError(reason, retry_after=retry_after(response.headers), outcome_unknown=may_publish)
        if status in (401, 403) or (status == 400 and _CREDENTIALS.search(detail)):
            scopes = " and its scopes" if status == 403 else ""
            return PermanentChannelError(f"{reason} ({self.check_secret()}{scopes})",
                                         hint=f"{self.network} refused the account's token: {self.check_secret()}"
                                              f"{scopes}, then retry the share (POST /v1/shares/{{id}}/retry)")
        return PermanentChannelError(reason)

    def check_secret(self) -> str:
        if not self.secret_key:
            return "check the account's credentials"
        return f"check the account's secret: the environment variable named by {self.secret_key}"

    def excerpt(self, response: httpx.Response) -> str:
        """The start of a body, as text, redacted: for reasons when the body is not the JSON expected."""
        return self.redact(readable_body(response.text[:_READ]))[:EXCERPT]

    def malformed(self, what: str, *, may_publish: bool = False) -> TransientChannelError:
        reason = self.redact(f"{self.network}: unexpected answer, {what}")
        return TransientChannelError(reason, outcome_unknown=may_publish)

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


def readable_body(text: str) -> str:
    """A body as one line of text: an HTML page's text without its markup, whitespace collapsed."""
    if _MARKUP.search(text):
        text = html.unescape(_TAG.sub(" ", _HIDDEN_MARKUP.sub(" ", text)))
    return " ".join(text.split())


def _is_json(response: httpx.Response) -> bool:
    try:
        response.json()
    except ValueError:
        return False
    return True


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
    """A readable name for a transport failure (never its message, which may carry URLs), with
    the system's own words for the socket error under it when there is one ("read error:
    connection reset by peer"): an operator tells a server that reset the connection from one
    that timed out or refused it."""
    name = re.sub(r"(?<!^)(?=[A-Z])", " ", type(exc).__name__).lower()
    errno = _errno_under(exc)
    return f"{name}: {os.strerror(errno).lower()}" if errno else name


def _errno_under(exc: BaseException) -> int | None:
    """The errno of the socket error an HTTP library's error was raised from (httpx -> httpcore -> OSError)."""
    seen: set[int] = set()
    under: BaseException | None = exc
    while under is not None and id(under) not in seen:
        seen.add(id(under))
        if isinstance(under, OSError) and under.errno:
            return under.errno
        under = under.__cause__ or under.__context__
    return None


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
