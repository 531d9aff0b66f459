"""``followthrough console reply``: a reply under a share posted on the console channel,
written to the account's replies file, ``console/<workspace>/<account>.replies.jsonl``
(the share's workspace and account as its stream records them), as a person on a network
would write it, so the whole follow-through runs on one machine with no network."""

from __future__ import annotations

from uuid import UUID

from followthrough import connections
from followthrough.run import Run
from scheduler.domain import share as lifecycle
from scheduler.errors import InvalidInputError, NotFoundError
from workers.channels.console_replies import write_reply


def reply(run: Run) -> int:
    args = run.args
    try:
        share_id = UUID(args.share_id)
    except ValueError:
        raise InvalidInputError("share_id", f"{args.share_id!r} is not a share id") from None
    connections.wait_for_schema(run.settings, timeout=10)
    store, _ = connections.build_store(run.settings, "cli", pool_size=1)
    store.pool.open(wait=True, timeout=30)
    try:
        records = store.read_stream(lifecycle.stream_id(share_id))
    finally:
        store.pool.close()
    state = lifecycle.fold(r.event for r in records)
    if state.planned is None:
        raise NotFoundError("share", str(share_id))
    if state.planned.channel != "console":
        raise InvalidInputError("share_id", f"share {share_id} is on {state.planned.channel}, not the console channel")
    # The share's workspace is its stream's; the replies file sits next to the account's posts.
    line = write_reply(run.settings.console_dir.resolve(), records[0].workspace_id, state.planned.account_name,
                       share_id=str(share_id), text=args.text, author=args.author, parent_id=args.to,
                       author_name=args.name)
    print(line["reply_id"])
    return 0
