"""``followthrough shares mark-sent``: a person found a held share's post (or posted it by
hand) and records it sent, as ``POST /v1/shares/{id}/mark-sent`` does. Without
``--external-id`` the post's id is read from the url for the share's channel (a Bluesky
handle resolved to its DID by the account's service); a url that names no post is
refused with a message naming ``url`` (exit 2), never a traceback."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from followthrough import connections
from followthrough.run import Run
from scheduler.domain import share as lifecycle
from scheduler.errors import InvalidInputError, NotFoundError
from scheduler.services.share_stream import ShareStreams
from scheduler.services.shares import ShareService


def mark_sent(run: Run) -> int:
    args = run.args
    share_id = _share_id(args.share_id)
    sent_at = _moment(args.sent_at)
    connections.wait_for_schema(run.settings, timeout=10)
    store, notifier = connections.build_store(run.settings, "cli", pool_size=2)
    store.pool.open(wait=True, timeout=30)
    notifier.start()
    try:
        records = store.read_stream(lifecycle.stream_id(share_id))
        if not records:
            raise NotFoundError("share", str(share_id))
        shares = ShareService(pool=store.pool, streams=ShareStreams(store, notifier),
                              resolve_handle=lambda config, handle: _resolve(run, config, handle))
        state, _ = shares.mark_sent(records[0].workspace_id, share_id, url=args.url, external_id=args.external_id,
                                    sent_at=sent_at, actor="cli")
    finally:
        notifier.stop()
        store.pool.close()
    sent = state.sent
    assert sent is not None
    print(orjson.dumps({"share_id": str(share_id), "status": state.status, "external_id": sent.external_id,
                        "url": sent.url, "sent_at": sent.sent_at.isoformat()}).decode())
    return 0


def _resolve(run: Run, config: Mapping[str, Any], handle: str) -> str | None:
    # Loaded only when a url names its author by handle: the command stays light otherwise.
    from followthrough.bootstrap import channel_client, handle_resolver
    from workers.channels.bluesky import BlueskyPublisher

    with channel_client(run.settings) as client:
        return handle_resolver(BlueskyPublisher(client))(config, handle)


def _share_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise InvalidInputError("share_id", f"{text!r} is not a share id") from None


def _moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidInputError("sent_at", f"{text!r} is not a time with an offset (RFC 3339)")
    return moment
