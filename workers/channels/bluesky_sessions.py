"""A Bluesky account and its sessions on its service, shared by the publisher
(``bluesky.py``) and the thread reader (``bluesky_threads.py``): the account from its
config, one cached session per account (created with its app password, replaced once
when the service refuses it), and XRPC calls made with it."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import httpx

from workers.channels import PermanentChannelError, Post
from workers.channels.http import ChannelHttp, base_url_of, error_fields, secret_from_env

CHANNEL = "bluesky"
CREDENTIAL_CONFIG = "app_password_env"
DEFAULT_SERVICE = "https://bsky.social"


@dataclass(frozen=True, slots=True)
class Account:
    service: str
    handle: str
    password: str


@dataclass(frozen=True, slots=True)
class Session:
    access_jwt: str
    did: str
    handle: str


class BlueskySessions:
    def __init__(self, client: httpx.Client, env: Mapping[str, str] | None = None) -> None:
        self.client = client
        self.env = os.environ if env is None else env
        self._sessions: dict[tuple[str, str], Session] = {}
        # One lock for the cache: worker threads share the sessions, and createSession is
        # rate-limited per account, so concurrent refreshes must not stampede it.
        self._lock = threading.Lock()

    def authed(
        self,
        account: Account,
        http: ChannelHttp,
        method: str,
        nsid: str,
        *,
        may_publish: bool = False,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One XRPC call with the account's session; a refused session is replaced once."""
        session = self.session(account, http)
        headers = headers or {}
        for attempt in range(2):
            response = replace(http, secrets=(*http.secrets, session.access_jwt)).send(
                method,
                f"{account.service}/xrpc/{nsid}",
                may_publish=may_publish,
                headers={**headers, "Authorization": f"Bearer {session.access_jwt}"},
                **kwargs,
            )
            if attempt or not session_refused(response):
                break
            session = self.session(account, http, replacing=session)
        return response

    def session(self, account: Account, http: ChannelHttp, *, replacing: Session | None = None) -> Session:
        key = (account.service, account.handle)
        with self._lock:
            current = self._sessions.get(key)
            if current is not None and current is not replacing:
                return current  # cached, or already replaced by another thread
            self._sessions.pop(key, None)
            body = http.answer(
                http.send(
                    "POST",
                    f"{account.service}/xrpc/com.atproto.server.createSession",
                    json={"identifier": account.handle, "password": account.password},
                )
            )
            fields = {name: body.get(name) if isinstance(body, dict) else None for name in ("accessJwt", "did")}
            if not all(isinstance(v, str) and v for v in fields.values()):
                raise http.malformed("no session in the answer")
            handle = body.get("handle")
            session = Session(
                access_jwt=str(fields["accessJwt"]),
                did=str(fields["did"]),
                handle=handle if isinstance(handle, str) and handle else account.handle,
            )
            self._sessions[key] = session
            return session

    def account(self, post: Post) -> tuple[Account, ChannelHttp]:
        config = post.account_config
        service = base_url_of(config.get("service", DEFAULT_SERVICE), CHANNEL, "service", example=DEFAULT_SERVICE)
        handle = config.get("handle")
        if not isinstance(handle, str) or not handle:
            raise PermanentChannelError("bluesky account config needs handle, e.g. team.bsky.social")
        password = secret_from_env(config, CREDENTIAL_CONFIG, self.env, network=CHANNEL,
                                   account=post.account_name, what="an app password")
        account = Account(service=service, handle=handle.removeprefix("@"), password=password)
        return account, ChannelHttp(self.client, CHANNEL, (password,), CREDENTIAL_CONFIG,
                                    before_write=post.before_write)


def session_refused(response: httpx.Response) -> bool:
    # An expired access token is a 400 ExpiredToken on the reference PDS, a 401 elsewhere.
    error, _ = error_fields(response)
    return response.status_code == 401 or (response.status_code == 400 and error in ("ExpiredToken", "InvalidToken"))
