"""Writes parsed HIS batches into the store: upserts, quarantine and the watermark, together.

`write_batch` runs ONE transaction per batch: the changed rows, the rejects and the new
watermark commit together or not at all, so a run killed at any instant resumes exactly
after the last committed batch and re-does nothing twice.

Upserts are keyed by HIS id. Existing rows' content hashes are fetched per batch; a row is
inserted when new, updated (with `plan_dirty` set) when its hash differs, and NOT WRITTEN AT
ALL when unchanged, so a re-run changes nothing, not even `updated_at`. Rejects are inserted
with ON CONFLICT DO NOTHING on (source, entity, row_key, raw_hash): the same bad row seen
again is not quarantined twice. A rejected row never touches the stored version of its key:
the last good version stays until the HIS sends a good one again. When a good row for a
quarantined key arrives later (the HIS was fixed), the key's open rejects get `resolved_at`
(see `load_open_rejects`).

On SQLite the rows arrive pre-encoded (`hisync.encoding`) and go straight to the DBAPI
`executemany`; elsewhere they go through SQLAlchemy Core statements, in a savepoint: when
the store refuses the batch (a value its column cannot hold) each row is written alone and
the refused ones are quarantined (STORE_REFUSED), so one row never stops a sync. (The
parser already rejects what the store's columns cannot keep; this is the net under it.)
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert, or_, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql

from core.enums import RejectReason, SyncRunStatus
from core.store.db import Database
from core.store.models import Department, Encounter, HisReject, HisSyncRun, HisWatermark, Patient
from hisync.encoding import ENCOUNTER_COLUMNS, PATIENT_COLUMNS, sqlite_datetime
from hisync.mapping import DepartmentCode
from hisync.records import AcceptedRow, ParsedBatch, RawRow, Reject, make_reject
from hisync.sources import Mark

_IN_CHUNK = 5000


@dataclass
class Counts:
    """What a batch (or a run, summed) did to the store."""

    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)

    def add(self, other: Counts) -> None:
        self.read += other.read
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.rejected += other.rejected
        for reason, n in other.by_reason.items():
            self.by_reason[reason] = self.by_reason.get(reason, 0) + n


_TABLES: dict[str, Table] = {"patients": Patient.__table__,  # type: ignore[dict-item]
                             "encounters": Encounter.__table__}  # type: ignore[dict-item]
_VALUE_COLUMNS = {"patients": PATIENT_COLUMNS, "encounters": ENCOUNTER_COLUMNS}
_LINK_COLUMNS = {"patients": (), "encounters": ("patient_id", "department_id")}
# Flags an update may set but never clear: a patient who opted out on a call, or whose death
# a nurse recorded, stays so when the HIS next changes their row with its own (older) value.
# Clearing one is a person's decision, made in the console, not a side effect of a sync.
_MRN_HOLDERS = select(_TABLES["patients"].c.mrn, _TABLES["patients"].c.his_id).where(
    _TABLES["patients"].c.mrn.in_(bindparam("mrns", expanding=True)))
_STICKY = {"patients": frozenset({"deceased", "opt_out_phone", "opt_out_sms"}),
           "encounters": frozenset[str]()}


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), _IN_CHUNK):
        yield items[i:i + _IN_CHUNK]


class StoreWriter:
    """The store side of one HIS source (named `source`)."""

    def __init__(self, db: Database, source: str, bulk: bool = True) -> None:
        """`bulk`: batches of thousands (a sync run); SQLite's page cache and WAL
        checkpoints are then sized for them. A feed writing one message at a time says
        False."""
        self.db = db
        self.source = source
        self._fast = db.dialect == "sqlite"
        self._bulk = bulk and self._fast
        self._departments: dict[str, int] = {}
        self._open: dict[str, set[str]] = {}  # entity -> keys with unresolved rejects
        self._sql: dict[str, str] = {}
        if self._fast:
            for entity in _TABLES:
                cols = (*_LINK_COLUMNS[entity], *_VALUE_COLUMNS[entity], "content_hash",
                        "plan_dirty", "updated_at")
                marks = ", ".join("?" for _ in cols)
                self._sql[f"insert_{entity}"] = (
                    f"INSERT INTO {entity} ({', '.join(cols)}) VALUES ({marks})")  # noqa: S608
                sets = [*_LINK_COLUMNS[entity], *_VALUE_COLUMNS[entity][1:], "content_hash"]
                refresh = ", ".join(
                    f"{c} = MAX({entity}.{c}, excluded.{c})" if c in _STICKY[entity] else
                    f"{c} = excluded.{c}" for c in sets)
                self._sql[f"upsert_{entity}"] = (
                    self._sql[f"insert_{entity}"]
                    + f" ON CONFLICT (his_id) DO UPDATE SET {refresh}, plan_dirty = 1, "
                    f"updated_at = excluded.updated_at "
                    f"WHERE {entity}.content_hash <> excluded.content_hash")

    # -- runs and marks ------------------------------------------------------------------

    def begin_run(self, now: dt.datetime) -> int:
        """Record a new run; earlier runs still marked running died: mark them failed."""
        with self.db.engine.begin() as conn:
            conn.execute(update(HisSyncRun)
                         .where(HisSyncRun.source == self.source,
                                HisSyncRun.status == SyncRunStatus.RUNNING)
                         .values(status=SyncRunStatus.FAILED,
                                 error="the process ended before the run finished"))
            run_id = conn.execute(insert(HisSyncRun).values(
                source=self.source, status=SyncRunStatus.RUNNING, started_at=now,
                rows_read=0, inserted=0, updated=0, unchanged=0, rejected=0,
            ).returning(HisSyncRun.id)).scalar_one()
        return int(run_id)

    def finish_run(self, run_id: int, now: dt.datetime, counts: Counts, status: SyncRunStatus,
                   marks: tuple[str | None, str | None], error: str | None = None) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(update(HisSyncRun).where(HisSyncRun.id == run_id).values(
                status=status, finished_at=now, rows_read=counts.read,
                inserted=counts.inserted, updated=counts.updated, unchanged=counts.unchanged,
                rejected=counts.rejected, watermark_from=marks[0], watermark_to=marks[1],
                error=error[:2000] if error else None))

    def load_mark(self, entity: str) -> Mark | None:
        with self.db.engine.connect() as conn:
            row = conn.execute(select(HisWatermark.value, HisWatermark.last_key).where(
                HisWatermark.source == self.source, HisWatermark.entity == entity)).first()
        return None if row is None else Mark(row[0], row[1])

    def reset_marks(self) -> None:
        """Forget the watermarks: the next run reads everything again (a full re-sync)."""
        from sqlalchemy import delete

        with self.db.engine.begin() as conn:
            conn.execute(delete(HisWatermark).where(HisWatermark.source == self.source))

    def _save_mark(self, conn: Connection, entity: str, mark: Mark, now: dt.datetime) -> None:
        values = {"value": mark.watermark[:64], "last_key": mark.key, "updated_at": now}
        done = conn.execute(update(HisWatermark).where(
            HisWatermark.source == self.source, HisWatermark.entity == entity).values(**values))
        if done.rowcount == 0:
            conn.execute(insert(HisWatermark).values(source=self.source, entity=entity,
                                                     **values))

    # -- departments -----------------------------------------------------------------------

    def ensure_departments(self, codes: Iterable[DepartmentCode]) -> dict[str, int]:
        """Insert the mapping's departments that are missing, rename changed ones."""
        with self.db.engine.begin() as conn:
            have = {r.code: r for r in conn.execute(
                select(Department.id, Department.code, Department.name, Department.name_en))}
            for d in codes:
                row = have.get(d.code)
                if row is None:
                    conn.execute(insert(Department).values(code=d.code, name=d.name,
                                                           name_en=d.name_en))
                elif (row.name, row.name_en) != (d.name, d.name_en):
                    conn.execute(update(Department).where(Department.id == row.id)
                                 .values(name=d.name, name_en=d.name_en))
            self._departments = {code: int(i) for i, code in
                                 conn.execute(select(Department.id, Department.code))}
        return dict(self._departments)

    # -- batches ---------------------------------------------------------------------------

    def write_batch(self, entity: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                    parsed: ParsedBatch, mark: Mark | None, run_id: int,
                    now: dt.datetime) -> Counts:
        """Apply one parsed batch and advance the watermark, in one transaction."""
        with self.db.engine.begin() as conn:
            return self.write_in(conn, entity, columns, rows, parsed, mark, run_id, now)

    def write_in(self, conn: Connection, entity: str, columns: Sequence[str],
                 rows: Sequence[Sequence[Any]], parsed: ParsedBatch, mark: Mark | None,
                 run_id: int, now: dt.datetime) -> Counts:
        """`write_batch` inside the caller's transaction (a feed writes a message's patient,
        visit and receipt together)."""
        counts = Counts(read=len(rows), unchanged=parsed.unchanged)
        accepted = parsed.accepted
        rejects = list(parsed.rejects)
        if self._bulk:
            # A bulk load touches every index: SQLite's default 2 MiB page cache thrashes,
            # and checkpointing the WAL every 4 MiB costs more than the inserts.
            conn.exec_driver_sql("PRAGMA cache_size = -65536")
            conn.exec_driver_sql("PRAGMA wal_autocheckpoint = 16384")
        links: dict[str, int] = {}
        if entity == "patients" and accepted:
            accepted = self._one_patient_per_mrn(conn, columns, rows, accepted, rejects)
        if entity == "encounters":
            links = self._patient_ids(conn, {a[3] for a in accepted if a[3]})
            if len(links) < len({a[3] for a in accepted}):
                for a in accepted:
                    if a[3] not in links:
                        rejects.append(make_reject(
                            a[0], "patient_his_id", RejectReason.UNKNOWN_PATIENT,
                            f"no patient with HIS id {a[3]!r}", _raw(columns, rows[a[5]])))
                accepted = [a for a in accepted if a[3] in links]
        if self._fast:
            counts.inserted, counts.updated = self._upsert_sqlite(
                conn, entity, accepted, links, now)
        else:
            try:
                with conn.begin_nested():
                    counts.inserted, counts.updated = self._upsert(
                        conn, entity, accepted, links, now)
            except (sa_exc.DataError, sa_exc.IntegrityError):
                # one row the store refuses must not stop the batch: each row alone,
                # the refused ones to the quarantine
                accepted = self._row_by_row(conn, entity, columns, rows, accepted, links,
                                            now, counts, rejects)
        counts.unchanged += len(accepted) - counts.inserted - counts.updated
        open_keys = self._open.get(entity)
        if open_keys:
            self._resolve(conn, entity, [a[0] for a in accepted if a[0] in open_keys], now)
        if rejects:
            self._quarantine(conn, entity, rejects, run_id, now)
            if open_keys is not None:
                open_keys.update(r.row_key for r in rejects)
            counts.rejected = len(rejects)
            for reason, n in Counter(r.reason for r in rejects).items():
                counts.by_reason[reason.value] = counts.by_reason.get(reason.value, 0) + n
        if mark is not None:
            self._save_mark(conn, entity, mark, now)
        return counts

    def _upsert(self, conn: Connection, entity: str, accepted: list[AcceptedRow],
                links: dict[str, int], now: dt.datetime) -> tuple[int, int]:
        """Insert the new rows, update the changed ones; (inserted, updated)."""
        existing = self._hashes(conn, entity, [a[0] for a in accepted])
        new = [a for a in accepted if a[0] not in existing]
        changed = [a for a in accepted if a[0] in existing and existing[a[0]] != a[1]]
        if new:
            self._insert(conn, entity, new, links, now)
        if changed:
            self._update(conn, entity, changed, links, now)
        return len(new), len(changed)

    def _row_by_row(self, conn: Connection, entity: str, columns: Sequence[str],
                    rows: Sequence[Sequence[Any]], accepted: list[AcceptedRow],
                    links: dict[str, int], now: dt.datetime, counts: Counts,
                    rejects: list[Reject]) -> list[AcceptedRow]:
        """Write each row in a savepoint of its own; a row the store refuses becomes a
        STORE_REFUSED reject with the driver's first line (about that row only)."""
        kept: list[AcceptedRow] = []
        for a in accepted:
            try:
                with conn.begin_nested():
                    inserted, updated = self._upsert(conn, entity, [a], links, now)
            except (sa_exc.DataError, sa_exc.IntegrityError) as exc:
                reason = str(exc.orig).strip().splitlines()[0][:300] if exc.orig else \
                    type(exc).__name__
                rejects.append(make_reject(a[0], "his_id", RejectReason.STORE_REFUSED,
                                           f"the store refused the row: {reason}",
                                           _raw(columns, rows[a[5]])))
                continue
            counts.inserted += inserted
            counts.updated += updated
            kept.append(a)
        return kept

    def load_open_rejects(self, entity: str) -> None:
        """Remember which keys have unresolved rejects: a later good row resolves them."""
        with self.db.engine.connect() as conn:
            self._open[entity] = set(conn.execute(
                select(HisReject.row_key).where(HisReject.source == self.source,
                                                HisReject.entity == entity,
                                                HisReject.resolved_at.is_(None))).scalars())

    def _resolve(self, conn: Connection, entity: str, keys: list[str], now: dt.datetime) -> None:
        if not keys:
            return
        for chunk in _chunks(keys):
            conn.execute(update(HisReject).where(
                HisReject.source == self.source, HisReject.entity == entity,
                HisReject.row_key.in_(chunk), HisReject.resolved_at.is_(None))
                .values(resolved_at=now))
        self._open[entity].difference_update(keys)

    def _upsert_sqlite(self, conn: Connection, entity: str, rows: list[AcceptedRow],
                       links: dict[str, int], now: dt.datetime) -> tuple[int, int]:
        """One INSERT .. ON CONFLICT DO UPDATE .. WHERE the hash differs; (inserted, updated).

        Counting without a prefetch: an unchanged row makes no change, an insert takes the
        next rowid (INTEGER PRIMARY KEY), so inserted = max(id) growth and updated = the
        remaining changes."""
        if not rows:
            return 0, 0
        raw = conn.connection.driver_connection
        assert raw is not None
        stamp = sqlite_datetime(now)
        if entity == "patients":
            params = [(*a[2], a[1], 1, stamp) for a in rows]
        else:
            deps = self._departments
            params = [(links[a[3]], deps[a[4]], *a[2], a[1], 1, stamp)  # type: ignore[index]
                      for a in rows]
        top = f"SELECT coalesce(max(id), 0) FROM {entity}"  # noqa: S608 - fixed names
        before_id = raw.execute(top).fetchone()[0]
        before = raw.total_changes
        raw.executemany(self._sql[f"upsert_{entity}"], params)
        changes = raw.total_changes - before
        inserted = raw.execute(top).fetchone()[0] - before_id
        return inserted, changes - inserted

    def _one_patient_per_mrn(self, conn: Connection, columns: Sequence[str],
                             rows: Sequence[Sequence[Any]], accepted: list[AcceptedRow],
                             rejects: list[Reject]) -> list[AcceptedRow]:
        """An MRN identifies one patient: a row whose MRN another patient holds (stored, or
        earlier in this batch) goes to quarantine naming the holder; the holder keeps it."""
        mrn_at = PATIENT_COLUMNS.index("mrn")
        holder: dict[str, str] = {}
        for chunk in _chunks(sorted({str(a[2][mrn_at]) for a in accepted})):
            holder.update((m, h) for m, h in conn.execute(_MRN_HOLDERS, {"mrns": chunk}))
        kept: list[AcceptedRow] = []
        for a in accepted:
            mrn = str(a[2][mrn_at])
            owner = holder.setdefault(mrn, a[0])
            if owner == a[0]:
                kept.append(a)
                continue
            rejects.append(make_reject(
                a[0], "mrn", RejectReason.MRN_IN_USE,
                f"this MRN belongs to HIS patient {owner!r}; one of the two records is wrong",
                _raw(columns, rows[a[5]])))
        return kept

    def _patient_ids(self, conn: Connection, his_ids: set[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        t = _TABLES["patients"]
        for chunk in _chunks(sorted(his_ids)):
            if self._fast:
                sql = f"SELECT his_id, id FROM patients WHERE his_id IN ({_marks(len(chunk))})"  # noqa: S608
                out.update(_raw_fetch(conn, sql, chunk))
            else:
                out.update((k, v) for k, v in conn.execute(
                    select(t.c.his_id, t.c.id).where(t.c.his_id.in_(chunk))))
        return out

    def _hashes(self, conn: Connection, entity: str, keys: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        t = _TABLES[entity]
        for chunk in _chunks(keys):
            if self._fast:
                sql = (f"SELECT his_id, content_hash FROM {entity} "  # noqa: S608
                       f"WHERE his_id IN ({_marks(len(chunk))})")
                out.update(_raw_fetch(conn, sql, chunk))
            else:
                out.update((k, v) for k, v in conn.execute(
                    select(t.c.his_id, t.c.content_hash).where(t.c.his_id.in_(chunk))))
        return out

    def _link_values(self, entity: str, a: AcceptedRow,
                     links: dict[str, int]) -> tuple[Any, ...]:
        if entity == "patients":
            return ()
        assert a[3] is not None and a[4] is not None
        return (links[a[3]], self._departments[a[4]])

    def _insert(self, conn: Connection, entity: str, rows: list[AcceptedRow],
                links: dict[str, int], now: dt.datetime) -> None:
        names = (*_LINK_COLUMNS[entity], *_VALUE_COLUMNS[entity])
        conn.execute(insert(_TABLES[entity]), [
            {**dict(zip(names, (*self._link_values(entity, a, links), *a[2]), strict=True)),
             "content_hash": a[1], "plan_dirty": True, "updated_at": now}
            for a in rows])

    def _update(self, conn: Connection, entity: str, rows: list[AcceptedRow],
                links: dict[str, int], now: dt.datetime) -> None:
        t = _TABLES[entity]
        names = (*_LINK_COLUMNS[entity], *_VALUE_COLUMNS[entity][1:])
        stmt = update(t).where(t.c.his_id == bindparam("b_key")).values(
            {n: or_(t.c[n], bindparam(f"b_{n}")) if n in _STICKY[entity] else
             bindparam(f"b_{n}") for n in (*names, "content_hash", "plan_dirty", "updated_at")})
        conn.execute(stmt, [
            {**{f"b_{n}": v for n, v in zip(
                names, (*self._link_values(entity, a, links), *a[2][1:]), strict=True)},
             "b_content_hash": a[1], "b_plan_dirty": True, "b_updated_at": now,
             "b_key": a[0]} for a in rows])

    def quarantine(self, conn: Connection, entity: str, rejects: list[Reject], run_id: int,
                   now: dt.datetime) -> None:
        """Keep rejects that never reached a batch (e.g. a message that could not be read)."""
        self._quarantine(conn, entity, rejects, run_id, now)

    def _quarantine(self, conn: Connection, entity: str, rejects: list[Reject], run_id: int,
                    now: dt.datetime) -> None:
        dialect = conn.dialect.name
        seen: set[tuple[str, str]] = set()
        rows = []
        for r in rejects:
            if (r.row_key, r.raw_hash) in seen:
                continue  # the very same raw row twice in one batch
            seen.add((r.row_key, r.raw_hash))
            rows.append((r, r.raw_hash))
        if self._fast:
            stamp = sqlite_datetime(now)
            conn.exec_driver_sql(_INSERT_REJECT_SQLITE, [
                (run_id, self.source, entity, r.row_key[:128], r.raw_json, digest,
                 r.field[:64], r.reason, r.detail[:512], stamp)  # a StrEnum binds as its value
                for r, digest in rows])
            return
        if dialect != "postgresql":
            raise NotImplementedError(f"quarantine on {dialect}")
        stmt = postgresql.insert(HisReject).on_conflict_do_nothing(
            index_elements=["source", "entity", "row_key", "raw_hash"])
        conn.execute(stmt, [{"run_id": run_id, "source": self.source, "entity": entity,
                             "row_key": r.row_key[:128], "raw": r.raw, "raw_hash": digest,
                             "field": r.field[:64], "reason": r.reason,
                             "detail": r.detail[:512], "created_at": now} for r, digest in rows])


# The same text SQLAlchemy would store (JSON via json.dumps, enum by value, naive-UTC time).
_INSERT_REJECT_SQLITE = (
    "INSERT INTO his_rejects (run_id, source, entity, row_key, raw, raw_hash, field, reason, "
    "detail, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (source, entity, row_key, raw_hash) DO NOTHING")


def _raw_fetch(conn: Connection, sql: str, params: Sequence[str]) -> list[tuple[Any, Any]]:
    """Two-column rows straight from the sqlite3 cursor (no Row objects on the hot path)."""
    raw = conn.connection.driver_connection
    assert raw is not None
    return raw.execute(sql, tuple(params)).fetchall()  # type: ignore[no-any-return]


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def _raw(columns: Sequence[str], row: Sequence[Any]) -> RawRow:
    from hisync.rows import text

    return {c: text(v) for c, v in zip(columns, row, strict=True)}
