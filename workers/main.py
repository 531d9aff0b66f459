"""The module the Dramatiq CLI loads: ``dramatiq workers.main`` (run by ``followthrough worker``).

This is a process entry point, so it configures logging and builds the broker
from the environment; each worker process then builds its runtime at boot.
"""

from __future__ import annotations

from followthrough.bootstrap import worker_broker
from followthrough.logs import configure_logging
from followthrough.settings import Settings

settings = Settings()
# (a worker process writes to a pipe to Dramatiq's master: `followthrough worker` decided
# the format and colours for the stream the master writes to, see roles.worker_env)
configure_logging(role="worker", level=settings.log_level, fmt=settings.log_format, colors=settings.log_colors)
broker = worker_broker(settings)
