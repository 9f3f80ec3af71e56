"""Subscriber lists, their subscribers, and the global suppression list.

A subscriber is *sendable* when it is ``active`` and its address is not suppressed; the
campaign sender reads sendable subscribers in id order, a batch at a time (keyset
pagination, so a list can grow or shrink while a campaign runs through it).
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import bindparam, delete, exists, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from desktop_app.core.campaigns.csv_import import STATUSES, ParsedCsv, RejectedRow
from desktop_app.core.csv_cells import safe_row
from desktop_app.core.errors import ListNotFoundError, UserInputError
from desktop_app.core.storage.database import Database
from desktop_app.core.storage.dialect import execute_many_fast
from desktop_app.core.storage.schema import ListRow, SubscriberRow, SuppressionRow
from desktop_app.core.validation import check_no_line_breaks

MAX_LIST_NAME = 100
SUPPRESSION_REASONS = ("manual", "unsubscribed", "bounced", "complained")

_INSERT_SUBSCRIBER = insert(SubscriberRow).values(
    list_id=bindparam("b_list"),
    email=bindparam("b_email"),
    email_key=bindparam("b_key"),
    name=bindparam("b_name"),
    fields=bindparam("b_fields"),
    status=bindparam("b_status"),
    created_at=bindparam("b_now"),
    updated_at=bindparam("b_now"),
)
# One encoder for every row of an import: json.dumps() builds a new one per call.
_ENCODE_FIELDS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_NOT_SUPPRESSED = ~exists().where(SuppressionRow.email_key == SubscriberRow.email_key)


@dataclass(frozen=True, slots=True)
class SubscriberList:
    """A list and how many of its subscribers are in each status."""

    id: int
    name: str
    created_at: float
    counts: dict[str, int]
    #: Active subscribers whose address is on the suppression list (never sent to).
    suppressed: int

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def sendable(self) -> int:
        return self.counts["active"] - self.suppressed


@dataclass(frozen=True, slots=True)
class Subscriber:
    """One subscriber as the sender and the exporter see it."""

    id: int
    email: str
    email_key: str
    name: str
    status: str
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class Suppression:
    """An address no campaign sends to, and why."""

    email_key: str
    reason: str
    detail: str
    created_at: float


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import did: rows stored, rows skipped as duplicates, rows rejected."""

    list_name: str
    imported: int
    duplicates: tuple[RejectedRow, ...]
    rejects: tuple[RejectedRow, ...]
    encoding: str = ""
    delimiter: str = ""


def validate_list_name(value: str) -> str:
    """A list name: one line of 1 to 100 characters, not blank."""
    check_no_line_breaks("list name", value)
    name = value.strip()
    if not name or len(name) > MAX_LIST_NAME or not name.isprintable():
        raise UserInputError(
            f"list name must be 1 to {MAX_LIST_NAME} printable characters, not {value!r}"
        )
    return name


class ListRepository:
    """Lists, subscribers and suppressions in the database."""

    def __init__(self, database: Database) -> None:
        self._database = database

    # -- lists -----------------------------------------------------------------------------

    def create(self, name: str, *, now: float | None = None) -> SubscriberList:
        name = validate_list_name(name)
        try:
            with self._database.write() as connection:
                connection.execute(insert(ListRow).values(name=name, created_at=now or time.time()))
        except IntegrityError:
            raise UserInputError(f"a list named {name!r} already exists") from None
        return self.get(name)

    def rename(self, name: str, new_name: str) -> SubscriberList:
        new_name = validate_list_name(new_name)
        try:
            with self._database.write() as connection:
                list_id = _list_id(connection, name)
                connection.execute(
                    update(ListRow).where(ListRow.id == list_id).values(name=new_name)
                )
        except IntegrityError:
            raise UserInputError(f"a list named {new_name!r} already exists") from None
        return self.get(new_name)

    def delete(self, name: str) -> None:
        """Remove a list and all its subscribers (the suppression list stays as it is)."""
        with self._database.write() as connection:
            list_id = _list_id(connection, name)
            # Explicit, not only ON DELETE CASCADE: a connection without foreign_keys=ON
            # (another tool on the same file) must not leave orphans either.
            connection.execute(delete(SubscriberRow).where(SubscriberRow.list_id == list_id))
            connection.execute(delete(ListRow).where(ListRow.id == list_id))

    def get(self, name: str) -> SubscriberList:
        with self._database.read() as connection:
            list_id = _list_id(connection, name)
            summaries = _summaries(connection, list_id)
        return summaries[0]

    def all(self) -> list[SubscriberList]:
        """Every list, by name."""
        with self._database.read() as connection:
            return _summaries(connection, None)

    # -- subscribers -----------------------------------------------------------------------

    def keys(self, name: str) -> set[str]:
        """The address keys already on list ``name`` (to preview duplicates)."""
        with self._database.read() as connection:
            return _keys(connection, _list_id(connection, name))

    def import_parsed(
        self, name: str, parsed: ParsedCsv, *, now: float | None = None
    ) -> ImportReport:
        """Store the valid rows of ``parsed`` in ONE transaction: all of them, or none.

        Rows whose address is already on the list are skipped and reported as duplicates.
        """
        now = time.time() if now is None else now
        with self._database.write() as connection:
            list_id = _list_id(connection, name)
            existing = _keys(connection, list_id)
            fresh = [s for s in parsed.subscribers if s.email_key not in existing]
            already = tuple(
                RejectedRow(s.line, s.email, "already on the list")
                for s in parsed.subscribers
                if s.email_key in existing
            )
            if fresh:
                execute_many_fast(
                    connection,
                    _INSERT_SUBSCRIBER,
                    [
                        {
                            "b_list": list_id,
                            "b_email": s.email,
                            "b_key": s.email_key,
                            "b_name": s.name,
                            # execute_many_fast passes values to the driver as they are.
                            "b_fields": _ENCODE_FIELDS(s.fields),
                            "b_status": s.status,
                            "b_now": now,
                        }
                        for s in fresh
                    ],
                )
        return ImportReport(
            list_name=name,
            imported=len(fresh),
            duplicates=tuple(sorted(parsed.duplicates + already, key=lambda r: r.line)),
            rejects=parsed.rejects,
            encoding=parsed.encoding,
            delimiter=parsed.delimiter,
        )

    def iter_sendable(self, name: str, *, batch_size: int = 1000) -> Iterator[Subscriber]:
        """Active, not suppressed subscribers of ``name`` in id order, one read per batch."""
        return self._iterate(name, batch_size, sendable_only=True)

    def iter_subscribers(self, name: str, *, batch_size: int = 5000) -> Iterator[Subscriber]:
        """Every subscriber of ``name`` in id order, whatever the status."""
        return self._iterate(name, batch_size, sendable_only=False)

    def _iterate(self, name: str, batch_size: int, *, sendable_only: bool) -> Iterator[Subscriber]:
        with self._database.read() as connection:
            list_id = _list_id(connection, name)
        after = 0
        while True:
            query = (
                select(SubscriberRow)
                .where(SubscriberRow.list_id == list_id, SubscriberRow.id > after)
                .order_by(SubscriberRow.id)
                .limit(batch_size)
            )
            if sendable_only:
                query = query.where(SubscriberRow.status == "active", _NOT_SUPPRESSED)
            # A short read per batch: the caller may take its time between batches.
            with self._database.read() as connection:
                rows = connection.execute(query).all()
            for row in rows:
                yield Subscriber(
                    id=row.id,
                    email=row.email,
                    email_key=row.email_key,
                    name=row.name,
                    status=row.status,
                    fields=dict(row.fields or {}),
                )
            if len(rows) < batch_size:
                return
            after = rows[-1].id

    def find(self, name: str, email_key: str) -> Subscriber | None:
        """The subscriber of list ``name`` with this (lower-cased) address, if any."""
        with self._database.read() as connection:
            list_id = _list_id(connection, name)
            row = connection.execute(
                select(SubscriberRow).where(
                    SubscriberRow.list_id == list_id, SubscriberRow.email_key == email_key
                )
            ).first()
        if row is None:
            return None
        return Subscriber(
            id=row.id,
            email=row.email,
            email_key=row.email_key,
            name=row.name,
            status=row.status,
            fields=dict(row.fields or {}),
        )

    def sample_sendable(self, name: str, size: int) -> list[Subscriber]:
        """Up to ``size`` sendable subscribers: the first half in id order, the rest at random
        (rows imported later may lack fields the first ones have)."""
        with self._database.read() as connection:
            list_id = _list_id(connection, name)
            sendable = select(SubscriberRow).where(
                SubscriberRow.list_id == list_id,
                SubscriberRow.status == "active",
                _NOT_SUPPRESSED,
            )
            first = connection.execute(
                sendable.order_by(SubscriberRow.id).limit(max(1, size // 2))
            ).all()
            seen = {row.id for row in first}
            spread = connection.execute(
                sendable.where(SubscriberRow.id.not_in(seen))
                .order_by(func.random())
                .limit(size - len(first))
            ).all()
        return [
            Subscriber(
                id=row.id,
                email=row.email,
                email_key=row.email_key,
                name=row.name,
                status=row.status,
                fields=dict(row.fields or {}),
            )
            for row in (*first, *spread)
        ]

    def count_sendable(self, name: str) -> int:
        return self.get(name).sendable

    def export_csv(self, name: str, path: Path, *, raw: bool = False) -> int:
        """Write list ``name`` to ``path`` (email, name, status, custom fields); returns rows.

        Cells a spreadsheet would run as formulas get a leading ``'`` (``csv_cells``; the
        import takes it off again) unless ``raw``. Written to a temporary file next to
        ``path`` and renamed, so a failed export never leaves half a file where a good one was.
        """
        subscribers = list(self.iter_subscribers(name))
        field_names: dict[str, None] = {}
        for subscriber in subscribers:
            field_names.update(dict.fromkeys(subscriber.fields))
        extra = [f for f in field_names if f not in ("email", "name", "status")]
        directory = path.parent if str(path.parent) else Path(".")
        temporary: Path | None = None
        try:
            with tempfile.NamedTemporaryFile(
                "w",
                encoding="utf-8",
                newline="",
                dir=directory,
                prefix=f".{path.name}.",
                suffix=".tmp",
                delete=False,
            ) as handle:
                temporary = Path(handle.name)
                writer = csv.writer(handle)
                writer.writerow(safe_row(["email", "name", "status", *extra], raw=raw))
                for s in subscribers:
                    row = [s.email, s.name, s.status, *(s.fields.get(f, "") for f in extra)]
                    writer.writerow(safe_row(row, raw=raw))
            os.replace(temporary, path)
        except BaseException:
            if temporary is not None:
                temporary.unlink(missing_ok=True)
            raise
        return len(subscribers)

    # -- suppression list ------------------------------------------------------------------

    def suppress(
        self, email_key: str, reason: str = "manual", detail: str = "", *, now: float | None = None
    ) -> Suppression:
        """Add ``email_key`` (already normalized and lower-cased) to the suppression list.

        An address already there keeps its first reason and date.
        """
        if reason not in SUPPRESSION_REASONS:
            raise UserInputError(
                f"reason must be one of {', '.join(SUPPRESSION_REASONS)}, not {reason!r}"
            )
        check_no_line_breaks("suppression detail", detail)
        with self._database.write() as connection:
            row = connection.execute(
                select(SuppressionRow).where(SuppressionRow.email_key == email_key)
            ).first()
            if row is None:
                created = time.time() if now is None else now
                connection.execute(
                    insert(SuppressionRow).values(
                        email_key=email_key, reason=reason, detail=detail[:300], created_at=created
                    )
                )
                return Suppression(email_key, reason, detail[:300], created)
        return Suppression(row.email_key, row.reason, row.detail, row.created_at)

    def unsuppress(self, email_key: str) -> bool:
        """Remove ``email_key`` from the suppression list; False if it was not there."""
        with self._database.write() as connection:
            result = connection.execute(
                delete(SuppressionRow).where(SuppressionRow.email_key == email_key)
            )
            return bool(result.rowcount)

    def is_suppressed(self, email_key: str) -> bool:
        with self._database.read() as connection:
            query = select(SuppressionRow.email_key).where(SuppressionRow.email_key == email_key)
            return connection.execute(query).first() is not None

    def suppressions(self) -> list[Suppression]:
        """The whole suppression list, by address."""
        with self._database.read() as connection:
            rows = connection.execute(select(SuppressionRow).order_by(SuppressionRow.email_key))
            return [Suppression(r.email_key, r.reason, r.detail, r.created_at) for r in rows]


def _list_id(connection: Connection, name: str) -> int:
    list_id = connection.execute(select(ListRow.id).where(ListRow.name == name.strip())).scalar()
    if list_id is None:
        raise ListNotFoundError(name)
    return int(list_id)


def _keys(connection: Connection, list_id: int) -> set[str]:
    query = select(SubscriberRow.email_key).where(SubscriberRow.list_id == list_id)
    return set(connection.execute(query).scalars())


def _summaries(connection: Connection, list_id: int | None) -> list[SubscriberList]:
    lists = select(ListRow).order_by(ListRow.name)
    by_status = select(SubscriberRow.list_id, SubscriberRow.status, func.count()).group_by(
        SubscriberRow.list_id, SubscriberRow.status
    )
    suppressed = (
        select(SubscriberRow.list_id, func.count())
        .where(SubscriberRow.status == "active", ~_NOT_SUPPRESSED)
        .group_by(SubscriberRow.list_id)
    )
    if list_id is not None:
        lists = lists.where(ListRow.id == list_id)
        by_status = by_status.where(SubscriberRow.list_id == list_id)
        suppressed = suppressed.where(SubscriberRow.list_id == list_id)
    counts: dict[int, dict[str, int]] = {}
    for owner, status, count in connection.execute(by_status):
        counts.setdefault(owner, dict.fromkeys(STATUSES, 0))[status] = count
    suppressed_counts = {owner: count for owner, count in connection.execute(suppressed)}
    return [
        SubscriberList(
            id=row.id,
            name=row.name,
            created_at=row.created_at,
            counts=counts.get(row.id, dict.fromkeys(STATUSES, 0)),
            suppressed=suppressed_counts.get(row.id, 0),
        )
        for row in connection.execute(lists)
    ]
