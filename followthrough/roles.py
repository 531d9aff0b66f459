"""The process roles as commands: migrate, api, dispatcher, projector, worker, and `up`
(all of them on one machine, supervised). Each gets its settings with both server URLs
resolved (``Run``) from the CLI's one runner."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import psycopg

from followthrough import connections
from followthrough.run import Run
from followthrough.settings import Settings
from followthrough.signals import stop_on_signals
from scheduler.services import workspaces


def migrate(run: Run) -> int:
    connections.migrate(run.settings)
    print("database migrated to the latest revision", file=sys.stderr)
    return 0


def api(run: Run) -> int:
    import uvicorn

    from followthrough import bootstrap  # the server roles alone load Dramatiq, httpx and FastAPI

    connections.wait_for_schema(run.settings)
    settings = run.settings
    if settings.api_workers > 1:
        # Each uvicorn worker process builds its own app from the environment; each counts
        # its own HTTP metrics, so a separate metrics port is not served (see docs/configuration.md).
        os.environ.update({"DATABASE_URL": connections.database_url(settings),
                           "BROKER_URL": connections.broker_url(settings)})
        uvicorn.run("followthrough.bootstrap:api_from_environment", factory=True, workers=settings.api_workers,
                    host=settings.api_host, port=settings.api_port, **bootstrap.API_SERVER_OPTIONS)
        return 0
    app = bootstrap.build_api(settings)
    if settings.metrics_port:
        from prometheus_client import start_http_server

        # Its own port, for the cluster's scraper only (never exposed like the API).
        start_http_server(settings.metrics_port, addr=settings.api_host, registry=app.state.metrics_registry)
    uvicorn.run(app, host=settings.api_host, port=settings.api_port, **bootstrap.API_SERVER_OPTIONS)
    return 0


def dispatcher(run: Run) -> int:
    from followthrough import bootstrap

    connections.wait_for_schema(run.settings)
    stop = threading.Event()
    stop_on_signals(stop)
    with bootstrap.dispatcher(run.settings) as leader:
        # Returns within a quarter second of a stop (the follower loop sleeps in slices);
        # closing the lock connection releases the lead.
        leader.run(stop)
    return 0


def projector(run: Run) -> int:
    from followthrough import bootstrap

    connections.wait_for_schema(run.settings)
    stop = threading.Event()
    stop_on_signals(stop)
    bootstrap.run_projector(run.settings, stop)
    return 0


def worker_argv(settings: Settings, *, processes: int | None, threads: int | None) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dramatiq",
        "workers.main",
        "--processes",
        str(processes or settings.worker_processes),
        "--threads",
        str(threads or settings.worker_threads),
        "--skip-logging",
        "--worker-shutdown-timeout",
        str(settings.worker_shutdown_seconds * 1000),
    ]


def child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = settings.database_url or ""
    env["BROKER_URL"] = settings.broker_url or ""
    env["FOLLOWTHROUGH_HOME"] = str(settings.home.resolve())
    env["FOLLOWTHROUGH_API_PORT"] = str(settings.api_port)
    env["FOLLOWTHROUGH_API_HOST"] = settings.api_host
    env["dramatiq_worker_timeout"] = str(settings.worker_poll_ms)
    return env


def worker_env(settings: Settings) -> dict[str, str]:
    """Dramatiq's master writes its worker processes' lines to its stderr, which they see only
    as a pipe: the format is decided here, on that stderr (the console renderer in a terminal,
    as every other line of `up`; JSON for a log pipeline)."""
    from followthrough.logs import format_for_children

    return {**child_env(settings), **format_for_children(settings.log_format, sys.stderr)}


def exec_worker(settings: Settings, *, processes: int | None, threads: int | None) -> None:
    """With both servers given there is nothing of ours to start or stop: become the
    Dramatiq CLI at once (a restarted worker is back sooner). Each worker process waits
    for the schema at boot."""
    argv = worker_argv(settings, processes=processes, threads=threads)
    os.execve(sys.executable, argv, worker_env(settings))


def worker(run: Run) -> int:
    argv = worker_argv(run.settings, processes=run.args.processes, threads=run.args.threads)
    from followthrough.local import lineage

    # Dramatiq's master stops with this process (its worker processes stop with it).
    # No threads run here yet, so the preexec function is safe.
    proc = subprocess.Popen(argv, env=worker_env(run.settings), preexec_fn=lineage.die_with_parent)  # noqa: PLW1509
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return proc.wait()


def up(run: Run) -> int:
    from followthrough.local.lineage import Lineage
    from followthrough.local.supervisor import Supervisor

    settings = run.settings
    stop = threading.Event()
    stop_on_signals(stop)
    connections.migrate(settings)
    with connections.connect(settings, "up") as conn:
        token = default_token(conn, settings.home)
    supervisor = Supervisor(
        env=child_env(settings),
        backoff_max=settings.restart_backoff_max_seconds,
        grace_seconds=settings.worker_shutdown_seconds + 10,
    )
    me = [sys.executable, "-m", "followthrough.cli"]
    for role in ("api", "dispatcher", "projector"):
        supervisor.add(role, [*me, role])
    # One supervised Dramatiq process per worker role: when one dies (Dramatiq's master
    # stops all its processes if one does), the others keep working while it restarts.
    for i in range(settings.worker_processes):
        supervisor.add(f"worker-{i + 1}", [*me, "worker", "--processes", "1"])
    # From here every process the roles start stays ours: an orphan comes back to `up`.
    lineage = Lineage.claim()
    base = f"http://{settings.api_host}:{settings.api_port}"
    try:
        supervisor.start_all()
        announced = False
        while not stop.is_set():
            supervisor.poll()
            lineage.reap(owned=supervisor.pids())
            if not announced and api_ready(settings):
                banner(base, token, settings)  # only once the API answers: every curl line works
                announced = True
            stop.wait(0.25 if not announced else 0.5)
    finally:
        print("\nstopping Followthrough...", file=sys.stderr)
        supervisor.stop_all()
        lineage.sweep()
    print("stopped.", file=sys.stderr)
    return 0


def api_ready(settings: Settings) -> bool:
    """Whether the API answers ``/readyz`` with 200 (its database and broker reachable)."""
    import urllib.error
    import urllib.request

    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::", "") else settings.api_host  # noqa: S104
    if ":" in host:
        host = f"[{host}]"
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through an HTTP proxy
    try:
        with direct.open(f"http://{host}:{settings.api_port}/readyz", timeout=1) as answer:
            return int(answer.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def default_token(conn: psycopg.Connection[Any], home: Path) -> str:
    """The write token `up` prints: kept (mode 0600) under home so it survives restarts."""
    path = home / "default-write-token"
    if path.exists():
        token = path.read_text().strip()
        if workspaces.token_is_valid(conn, token, "default", "write"):
            return token
    token = str(workspaces.create_token(conn, "default", "write", label="followthrough up"))
    write_private(path, token + "\n")
    return token


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file readable by its owner only, from the moment it exists."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def banner(base: str, token: str, settings: Settings) -> None:
    lines = [
        "",
        "Followthrough is running.",
        f"  API:            {base}   (docs: {base}/docs)",
        f"  write token:    {token}   (workspace: default)",
        f"  state:          {settings.home.resolve()}",
        f"  console posts:  {settings.console_dir.resolve()}/<workspace>/<account>.jsonl",
        "",
        "Try:",
        f"  export FT={token}",
        f'  curl -s -H "Authorization: Bearer $FT" {base}/v1/accounts '
        '-H \'Content-Type: application/json\' -d \'{"name": "demo", "channel": "console"}\'',
        "",
        "Ctrl-C stops everything.",
        "",
    ]
    print("\n".join(lines), flush=True)
