"""The shares model's tables as rows in bulk: read the rows of some shares into the fold,
and write rows back, by COPY into fresh tables (a rebuild) or by upsert into the live
ones (the live projector). One query per table either way, never one per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from events import sqlfiles
from events.ids import share_id_of
from events.projections.shares_fold import REPLY_COLUMNS, SHARE_COLUMNS, TASK_COLUMNS, Row, SharesFold

Q = sqlfiles.load("events.projections.sql", "shares.sql")

# The columns the fold fills, per live table, and each table's key.
COLUMNS: Mapping[str, Sequence[str]] = {
    "rm_shares": SHARE_COLUMNS, "rm_response_tasks": TASK_COLUMNS, "rm_replies": REPLY_COLUMNS,
}
KEYS: Mapping[str, str] = {"rm_shares": "share_id", "rm_response_tasks": "task_id", "rm_replies": "id"}

# (share rows, task rows, reply rows)
Rows = tuple[list[Row], list[Row], list[Row]]
# One stream's rows: its share row (if any), its task rows and its reply rows.
StreamRows = tuple[Row | None, list[Row], list[Row]]
# Per table, each row's values by its key, as read (to tell which rows a fold changed).
Snapshot = tuple[dict[UUID, tuple[Any, ...]], dict[UUID, tuple[Any, ...]], dict[UUID, tuple[Any, ...]]]
# One stream's rows as last written, with their values (the live projector keeps these).
Held = tuple[StreamRows, Snapshot]


@dataclass(frozen=True, slots=True)
class _Table:
    name: sql.Identifier
    key: str
    columns: tuple[str, ...]
    types: tuple[str, ...]
    values: itemgetter[Any]
    select: sql.Composed
    take: sql.Composed
    copy: sql.Composed
    stage: sql.Composed
    copy_staged: sql.Composed
    merge: sql.Composed

    @classmethod
    def of(cls, conn: psycopg.Connection[Any], live: str, table: str) -> _Table:
        columns = tuple(COLUMNS[live])
        types = tuple(name for (name,) in conn.execute(Q["column_types"], {"table": table, "columns": list(columns)}))
        if len(types) != len(columns):
            raise RuntimeError(f"{table} lacks columns the shares model writes")
        name, key = sql.Identifier(table), sql.Identifier(KEYS[live])
        names = sql.SQL(", ").join(map(sql.Identifier, columns))
        where = sql.SQL("WHERE share_id = ANY(%s)")
        staged = sql.Identifier("batch__" + table)  # not rm_*: a temporary table, not part of the model
        updates = sql.SQL(", ").join(
            sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in columns
        )
        return cls(
            name=name, key=KEYS[live], columns=columns, types=types, values=itemgetter(*columns),
            select=sql.SQL("SELECT {} FROM {} {}").format(names, name, where),
            take=sql.SQL("DELETE FROM {} {} RETURNING {}").format(name, where, names),
            copy=sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(name, names),
            stage=sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS").format(staged, name),
            copy_staged=sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(staged, names),
            merge=sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) DO UPDATE SET {}").format(
                name, names, names, staged, key, updates),
        )


class ShareRows:
    """The three tables of the shares model on one connection (``tables``: live name ->
    the table to use, the live one or one being rebuilt)."""

    def __init__(self, conn: psycopg.Connection[Any], tables: Mapping[str, str]) -> None:
        self._tables = tuple(_Table.of(conn, live, tables[live]) for live in COLUMNS)

    def seed(self, conn: psycopg.Connection[Any], fold: SharesFold, stream_ids: Sequence[str], *,
             take: bool = False, tasks_of: Sequence[str] | None = None,
             replies_of: Sequence[str] | None = None) -> dict[str, Snapshot]:
        """Give ``fold`` the rows these streams' shares have in the tables (``take``:
        deleting them from the tables). Unless ``take``, returns each stream's rows'
        values, for :meth:`changed`. Task and reply rows only of the streams in
        ``tasks_of`` and ``replies_of`` when given."""
        before: dict[str, Snapshot] = {}
        if not stream_ids:
            return before
        stream_of = {share_id_of(stream_id): stream_id for stream_id in stream_ids}
        share_ids = list(stream_of)
        wanted = [share_ids, *(share_ids if some is None else [share_id_of(s) for s in some]
                               for some in (tasks_of, replies_of))]
        shares, tasks, replies = (self._rows(conn, table, ids, take) if ids else []
                                  for table, ids in zip(self._tables, wanted, strict=True))
        by_stream: dict[str, tuple[list[Row], list[Row]]] = {}
        for index, some in ((0, tasks), (1, replies)):
            for row in some:
                by_stream.setdefault(stream_of[row["share_id"]], ([], []))[index].append(row)
        held = {stream_of[row["share_id"]]: row for row in shares}
        for stream_id in dict.fromkeys([*held, *by_stream]):
            its_tasks, its_replies = by_stream.get(stream_id, ((), ()))
            fold.add(stream_id, held.get(stream_id), its_tasks, its_replies)
        if take:
            return before
        for index, (table, some) in enumerate(zip(self._tables, (shares, tasks, replies), strict=True)):
            key, getter = table.key, table.values
            for row in some:
                stream_id = stream_of[row["share_id"]]
                values = before.get(stream_id)
                if values is None:
                    values = before[stream_id] = ({}, {}, {})
                values[index][row[key]] = getter(row)
        return before

    def changed(self, fold: SharesFold, stream_ids: Iterable[str], before: Mapping[str, Snapshot],
                keep: dict[str, Held] | None = None) -> Rows:
        """Take these streams' rows out of ``fold``: those new or changed since ``before``
        (and every row of each stream, with its values as written, into ``keep``, when
        given: the next batch compares with them without working them out again).

        Only the share row and the task and reply rows the fold marks as made or changed
        are compared: the others are as they were read back (a look touches a share with
        many replies and changes none of them)."""
        found: Rows = ([], [], [])
        shares = found[0]
        (share_key, share_values), tasks, replies = ((t.key, t.values) for t in self._tables)
        for stream_id in stream_ids:
            rows, changed_tasks, changed_replies = fold.pop_changed(stream_id)
            share = rows[0]
            written = before.get(stream_id) or ({}, {}, {})
            if share is not None:
                key, values = share[share_key], share_values(share)
                if written[0].get(key) != values:
                    shares.append(share)
                    written[0][key] = values
            for (key_of, values_of), some, now, out in ((tasks, changed_tasks, written[1], found[1]),
                                                        (replies, changed_replies, written[2], found[2])):
                for row in some:
                    key, values = row[key_of], values_of(row)
                    if now.get(key) != values:
                        out.append(row)
                        now[key] = values
            if keep is not None:
                keep[stream_id] = (rows, written)
        return found

    def copy(self, conn: psycopg.Connection[Any], rows: Rows) -> None:
        """Write new rows (COPY, binary: each value dumped in C by its column's type,
        measured 3.3 µs a share row against 9.1 µs as text)."""
        with conn.cursor() as cur:
            for table, some in zip(self._tables, rows, strict=True):
                if not some:
                    continue
                with cur.copy(table.copy) as copy:
                    copy.set_types(list(table.types))
                    for row in some:
                        copy.write_row(table.values(row))

    def upsert(self, conn: psycopg.Connection[Any], rows: Rows) -> None:
        """Write rows, new or changed, over the ones with the same key: COPY into a
        temporary table (the session's, emptied at commit), then one INSERT ... ON CONFLICT
        per table. Measured against one INSERT from ``unnest`` of an array per column:
        55 against 61-67 µs of client CPU an event (psycopg dumps arrays in Python)."""
        with conn.cursor() as cur:
            for table, some in zip(self._tables, rows, strict=True):
                if not some:
                    continue
                cur.execute(table.stage)
                with cur.copy(table.copy_staged) as copy:
                    copy.set_types(list(table.types))
                    for row in some:
                        copy.write_row(table.values(row))
                cur.execute(table.merge)

    @staticmethod
    def _rows(conn: psycopg.Connection[Any], table: _Table, share_ids: list[UUID], take: bool) -> list[Row]:
        columns = table.columns
        query = table.take if take else table.select
        # fetchall: rows made in one C call (iterating the cursor costs a Python call a row)
        return [dict(zip(columns, row, strict=True)) for row in conn.execute(query, (share_ids,)).fetchall()]
