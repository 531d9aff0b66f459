"""Projections for rebuild tests, importable by a parallel rebuild's worker processes
(which receive the projection pickled)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import psycopg

from events.projections.shares import SharesProjection, SharesRebuilder


class FailsInAWorker(SharesProjection):
    """The shares projection, except that its rebuilder fails in every process but the
    one that made it: in a parallel rebuild's workers."""

    def __init__(self) -> None:
        self.made_in = os.getpid()

    def rebuilder(
        self, conn: psycopg.Connection[Any], tables: Mapping[str, str], *, resume: bool = False
    ) -> SharesRebuilder:
        if os.getpid() != self.made_in:
            raise RuntimeError("the worker's fold broke")
        return super().rebuilder(conn, tables, resume=resume)
