"""Actor declarations. Messages carry ids only; the database holds the rest.

Actors are declared on a given broker by ``declare`` (not at import), so each
process role builds its own broker from settings. No Dramatiq retries or
delays: retries are rescheduled in the database, and a lost message comes back
through the dispatcher's lease.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import dramatiq
from dramatiq.middleware import CurrentMessage

from workers import execution, runtime


def execute_share(share_id: str) -> None:
    message = CurrentMessage.get_current_message()
    execution.execute_share(runtime.current(), UUID(share_id), message_id=message.message_id if message else None)


@dataclass(frozen=True)
class Actors:
    execute_share: dramatiq.Actor[Any, Any]

    def send_for(self, kind: str, share_id: UUID) -> None:
        if kind == "publish":
            self.execute_share.send(str(share_id))
        else:
            raise ValueError(f"no actor handles schedule kind {kind!r}")


def queue_names(prefix: str) -> dict[str, str]:
    return {"publish": f"{prefix}.publish"}


def declare(broker: dramatiq.Broker, *, queue_prefix: str) -> Actors:
    queues = queue_names(queue_prefix)
    return Actors(
        execute_share=dramatiq.actor(
            actor_name="execute_share",
            queue_name=queues["publish"],
            broker=broker,
            max_retries=0,
            time_limit=5 * 60 * 1000,
        )(execute_share),
    )
