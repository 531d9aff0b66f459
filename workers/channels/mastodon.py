"""The Mastodon channel: statuses through the REST API of the account's server.

Account config: ``{"base_url": "https://mastodon.social", "access_token_env": "MASTODON_TOKEN",
"visibility": "public"}``. The token is read from the named environment variable at each
call, so a missing one fails that share with a clear reason instead of the worker's start.
It needs the scopes ``write:statuses`` (publish) and ``read:accounts`` + ``read:statuses``
(``find``).

Idempotency: every publish sends ``Idempotency-Key``; Mastodon remembers it for an hour
and answers a repeat with the same status. Past the hour, ``find`` (reconciliation) looks
through the account's own recent statuses for one created no earlier than the scheduled
time (minus ``CLOCK_SKEW``) whose *visible text* equals the share's text. Mastodon
returns ``content`` as HTML, and the plain source (``/statuses/:id/source``) costs a
request per status, so both sides are compared after rendering the HTML to text
(paragraphs and line breaks as whitespace, links' hidden parts kept), collapsing
whitespace, and dropping the ``@host`` of remote mentions (Mastodon shows
``@user@host`` as ``@user``). An identical text posted by hand in that window would be
taken for ours: acceptable, since it is the same words on the same account.

The second half of this module translates HTTP failures into channel errors; bluesky.py
uses it too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import httpx

from workers.channels import ChannelError, PermanentChannelError, Post, Published, TransientChannelError

CHANNEL = "mastodon"
VISIBILITIES = frozenset({"public", "unlisted", "private", "direct"})
CLOCK_SKEW = timedelta(minutes=5)  # our clock and the server's may disagree by this much
PAGE_SIZE = 40  # the most Mastodon returns per page
MAX_PAGES = 5  # find() looks through at most 200 statuses newer than the scheduled time


@dataclass(frozen=True, slots=True)
class _Account:
    base_url: str
    token: str
    visibility: str


class MastodonPublisher:
    channel = CHANNEL

    def __init__(self, client: httpx.Client, env: Mapping[str, str] | None = None) -> None:
        self.client = client
        self.env = os.environ if env is None else env

    def publish(self, post: Post) -> Published:
        account = self._account(post)
        http = ChannelHttp(self.client, CHANNEL, (account.token,))
        response = http.send(
            "POST",
            f"{account.base_url}/api/v1/statuses",
            may_publish=True,
            headers={**_auth(account), "Idempotency-Key": post.idempotency_key},
            json={"status": post.text, "visibility": account.visibility},
        )
        return _published(http.answer(response, may_publish=True), http, may_publish=True)

    def find(self, post: Post) -> Published | None:
        account = self._account(post)
        http = ChannelHttp(self.client, CHANNEL, (account.token,))
        try:
            return self._find(account, post, http)
        except TransientChannelError as exc:
            raise still_unknown(exc) from exc

    def _find(self, account: _Account, post: Post, http: ChannelHttp) -> Published | None:
        me = http.answer(
            http.send("GET", f"{account.base_url}/api/v1/accounts/verify_credentials", headers=_auth(account)),
        )
        account_id = _text_field(me, "id", http)
        since = post.scheduled_at - CLOCK_SKEW
        wanted = comparable(post.text)
        params: dict[str, str | int] = {"limit": PAGE_SIZE, "exclude_reblogs": "true"}
        for _ in range(MAX_PAGES):
            page = http.answer(
                http.send(
                    "GET",
                    f"{account.base_url}/api/v1/accounts/{account_id}/statuses",
                    headers=_auth(account),
                    params=params,
                ),
            )
            if not isinstance(page, list) or not page:
                return None
            for status in page:
                if _is_ours(status, since=since, text=wanted):
                    return _published(status, http)
            oldest = _time(page[-1].get("created_at")) if isinstance(page[-1], dict) else None
            if oldest is None or oldest < since:
                return None  # newest first: the rest of the timeline is older still
            params["max_id"] = _text_field(page[-1], "id", http)
        return None

    def _account(self, post: Post) -> _Account:
        config = post.account_config
        base_url = base_url_of(config.get("base_url"), CHANNEL, "base_url", example="https://mastodon.social")
        env_name = config.get("access_token_env")
        if not isinstance(env_name, str) or not env_name:
            raise PermanentChannelError(
                "mastodon account config needs access_token_env: the name of the environment variable "
                "that holds the access token"
            )
        token = self.env.get(env_name, "").strip()
        if not token:
            raise PermanentChannelError(
                f"environment variable {env_name} (access_token_env of mastodon account "
                f"{post.account_name!r}) is not set or empty"
            )
        visibility = config.get("visibility", "public")
        if visibility not in VISIBILITIES:
            raise PermanentChannelError(
                f"mastodon visibility must be one of {sorted(VISIBILITIES)}, not {visibility!r}"
            )
        return _Account(base_url=base_url, token=token, visibility=str(visibility))


def _auth(account: _Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.token}"}


def _published(status: Any, http: ChannelHttp, *, may_publish: bool = False) -> Published:
    external_id = _text_field(status, "id", http, may_publish=may_publish)
    url = status.get("url") or status.get("uri")
    return Published(external_id=external_id, url=url if isinstance(url, str) else None)


def _is_ours(status: Any, *, since: datetime, text: str) -> bool:
    if not isinstance(status, dict):
        return False
    created = _time(status.get("created_at"))
    return created is not None and created >= since and comparable(visible_text(status.get("content"))) == text


def _text_field(body: Any, key: str, http: ChannelHttp, *, may_publish: bool = False) -> str:
    value = body.get(key) if isinstance(body, dict) else None
    if not isinstance(value, str | int) or value == "":
        raise http.malformed(f"no {key!r} in the answer", may_publish=may_publish)
    return str(value)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --- comparing a status with the share's text -----------------------------------------

_REMOTE_MENTION = re.compile(r"@(\w+)@[\w-]+(?:\.[\w-]+)+")


class _Text(HTMLParser):
    """Collects the text a reader sees; block ends and line breaks become spaces."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "p"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def visible_text(content: Any) -> str:
    """The text of a status' HTML ``content`` (links keep their hidden ``invisible`` spans)."""
    parser = _Text()
    parser.feed(content if isinstance(content, str) else "")
    parser.close()
    return "".join(parser.parts)


def comparable(text: str) -> str:
    return " ".join(_REMOTE_MENTION.sub(r"@\1", text).split())


# --- HTTP failures as channel errors (shared with bluesky.py) ----------------------------

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
    when = _http_date(value) or _time(headers.get("x-ratelimit-reset"))
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
