"""The ids that the domain and the read side both derive from a share: its stream's id
and the id of a reply collected under it. Written once, here (``events`` imports nothing
of ours, so the domain imports these, never the other way round)."""

from __future__ import annotations

from hashlib import sha1
from uuid import NAMESPACE_URL, UUID

__all__ = ["STREAM_PREFIX", "reply_uuid", "share_id_of", "share_uuid", "stream_id"]

STREAM_PREFIX = "share-"
_NAMESPACE = NAMESPACE_URL.bytes


def stream_id(share_id: UUID) -> str:
    """The stream a share's events are appended to."""
    return f"{STREAM_PREFIX}{share_id}"


def share_id_of(stream_id: str) -> UUID:
    """The share a ``share-<uuid>`` stream belongs to."""
    return UUID(stream_id.removeprefix(STREAM_PREFIX))


def share_uuid(share_id: UUID, name: str) -> UUID:
    """The id named ``name`` under a share (an event's, a task's, a reply's):
    ``uuid5(NAMESPACE_URL, "followthrough:share:<share id>:<name>")`` spelled out with the
    namespace's bytes taken once (``uuid5`` converts the namespace on every call: 12 µs
    against 8 here, several times a share on the worker's path and once per reply in a rebuild)."""
    digest = sha1(_NAMESPACE + f"followthrough:share:{share_id}:{name}".encode(), usedforsecurity=False).digest()
    return UUID(bytes=digest[:16], version=5)  # a name-based id, as uuid5 is


def reply_uuid(share_id: UUID, reply_id: str) -> UUID:
    """A reply's id (in the API and ``rm_replies``), from its share and the network's reply id."""
    return share_uuid(share_id, f"reply:{reply_id}")
