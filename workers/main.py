"""The module the Dramatiq CLI loads: ``dramatiq workers.main`` (run by ``followthrough worker``).

This is a process entry point, so it configures logging and builds the broker
from the environment; each worker process then builds its runtime at boot.
"""

from __future__ import annotations

from scheduler.logs import configure_logging
from scheduler.settings import Settings
from workers.bootstrap import worker_broker

settings = Settings()
configure_logging(role="worker", level=settings.log_level, fmt=settings.log_format)
broker = worker_broker(settings)
