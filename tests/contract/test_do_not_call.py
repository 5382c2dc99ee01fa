"""The do-not-call list's services on every store: listing and searching, removal (audited,
a second removal a no-op), and the CSV import with hostile lines: each bad line reported by
its number, the good ones added in one transaction, audited once."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select

from core.audit import AuditLog, verify_chain
from core.clock import FakeClock
from core.do_not_call import (
    DncState,
    ImportProblem,
    add,
    blocked,
    decode_csv,
    expiry,
    import_csv,
    listing,
    on_list,
    remove,
)
from core.enums import DncReason, DncSource, Sex
from core.errors import InvalidRequest, NotFound
from core.store.db import Database
from core.store.models import AuditEntry, DoNotCall, Patient
from tests.audit_key import TEST_AUDIT_KEY

NOW = dt.datetime(2026, 3, 10, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai
TZ = "Asia/Shanghai"


def _audit() -> AuditLog:
    return AuditLog(FakeClock(NOW), TEST_AUDIT_KEY)


def _patient(db: Database, name: str, phone: str) -> int:
    with db.session() as s:
        p = Patient(his_id=f"H-{phone}", mrn=f"M-{phone}", name=name, sex=Sex.MALE,
                    phone=phone, language="zh-CN", timezone=TZ, content_hash="x",
                    updated_at=NOW)
        s.add(p)
        s.flush()
        return p.id


def _entries(db: Database) -> list[tuple[str, DncReason, DncSource, str, dt.datetime | None]]:
    with db.session() as s:
        return [tuple(r) for r in s.execute(  # type: ignore[misc]
            select(DoNotCall.phone, DoNotCall.reason, DoNotCall.source, DoNotCall.note,
                   DoNotCall.expires_at).order_by(DoNotCall.id))]


def _actions(db: Database) -> list[tuple[str, str, dict[str, Any]]]:
    with db.session() as s:
        return [(a, o, d) for a, o, d in s.execute(
            select(AuditEntry.action, AuditEntry.object_id, AuditEntry.detail)
            .where(AuditEntry.action.like("dnc.%")).order_by(AuditEntry.id))]


def test_listing_search_and_states(db: Database) -> None:
    wang = _patient(db, "王芳", "+8613800138001")
    with db.session() as s:
        add(s, _audit(), phone="+8613800138001", reason=DncReason.PATIENT_REQUEST,
            source=DncSource.TICKET, actor="user:agent", now=NOW - dt.timedelta(days=2),
            patient_id=wang, note="asked twice")
        add(s, _audit(), phone="+8613900139002", reason=DncReason.WRONG_NUMBER,
            source=DncSource.CONSOLE, actor="user:agent", now=NOW - dt.timedelta(days=1),
            note="100% not theirs")
        add(s, _audit(), phone="+8613700137003", reason=DncReason.OTHER, source=DncSource.CLI,
            actor="cli:root", now=NOW - dt.timedelta(days=9),
            expires_at=NOW - dt.timedelta(days=1))
    with db.session() as s:
        in_force = listing(s, NOW)
        everything = listing(s, NOW, include_removed=True)
        by_digits = listing(s, NOW, "13900")
        by_format = listing(s, NOW, "139-0013-9002")
        by_name = listing(s, NOW, "王")
        by_note = listing(s, NOW, "100%")
        wildcard = listing(s, NOW, "_")
        one = listing(s, NOW, limit=1)
    assert [r.phone for r in in_force] == ["+8613900139002", "+8613800138001"]  # newest first
    assert [(r.phone, r.state) for r in everything][-1] == ("+8613700137003", DncState.EXPIRED)
    first = in_force[1]
    assert (first.patient_id, first.patient_name, first.reason, first.source, first.note,
            first.added_by, first.state) == (wang, "王芳", DncReason.PATIENT_REQUEST,
                                             DncSource.TICKET, "asked twice", "user:agent",
                                             DncState.IN_FORCE)
    assert in_force[0].patient_name is None
    assert [r.phone for r in by_digits] == [r.phone for r in by_format] == ["+8613900139002"]
    assert [r.phone for r in by_name] == ["+8613800138001"]
    assert [r.phone for r in by_note] == ["+8613900139002"]
    assert wildcard == []  # LIKE wildcards are searched for as themselves
    assert len(one) == 1


def test_remove_is_audited_and_a_second_removal_changes_nothing(db: Database) -> None:
    with db.session() as s:
        entry = add(s, _audit(), phone="+8613800138001", reason=DncReason.PATIENT_REQUEST,
                    source=DncSource.CONSOLE, actor="user:agent", now=NOW)
        entry_id = entry.id
    later = NOW + dt.timedelta(hours=1)
    with db.session() as s:
        with pytest.raises(InvalidRequest):
            remove(s, _audit(), entry_id, "user:sup", later, "   ")
        with pytest.raises(NotFound):
            remove(s, _audit(), entry_id + 100, "user:sup", later, "typo")
        done = remove(s, _audit(), entry_id, "user:sup", later, "patient consented again")
        again = remove(s, _audit(), entry_id, "user:admin", later, "twice")
        assert blocked(s, ["+8613800138001"], later) == {}
        assert blocked(s, ["+8613800138001"], NOW) == {}  # removal is not time-travelled
    assert done.changed and not again.changed
    assert "already removed by user:sup" in again.message
    with db.session() as s:
        row = s.get(DoNotCall, entry_id)
        assert row is not None and (row.removed_by, row.removed_at) == ("user:sup", later)
        assert [r.state for r in listing(s, later, include_removed=True)] == [DncState.REMOVED]
        assert listing(s, later) == []
        assert verify_chain(s, TEST_AUDIT_KEY).ok
    assert [(a, d.get("why")) for a, _, d in _actions(db)] == [
        ("dnc.add", None), ("dnc.remove", "patient consented again")]


def test_on_list_finds_a_patients_numbers_in_force(db: Database) -> None:
    with db.session() as s:
        add(s, _audit(), phone="+8613800138001", reason=DncReason.WRONG_NUMBER,
            source=DncSource.CONSOLE, actor="user:a", now=NOW)
        add(s, _audit(), phone="+8613800138002", reason=DncReason.OTHER,
            source=DncSource.CONSOLE, actor="user:a", now=NOW, expires_at=NOW)
        found = on_list(s, ["+8613800138001", "+8613800138002", ""], NOW)
        assert on_list(s, [], NOW) == []
    assert [(r.phone, r.reason) for r in found] == [("+8613800138001",
                                                     DncReason.WRONG_NUMBER)]


HOSTILE = (
    "\ufeffPhone, Reason ,note,expires\r\n"          # 1: header, BOM, odd case and spaces
    "138 0013 8001,,first,\r\n"                       # 2: good, reason defaults
    "\r\n"                                            # 3: blank: skipped
    "12345,patient_request,,\r\n"                     # 4: bad number
    "+86 139 0013 9002,WRONG-NUMBER,\"a, quoted\nnote\",2026-06-30\r\n"  # 5-6: good
    "13700137003,angry,,\r\n"                         # 7: unknown reason
    "13700137004,other,,2026-02-30\r\n"               # 8: bad date (no such day)
    "13700137005,other,,2026-03-10\r\n"               # 9: bad date (lapsed at 00:00 today)
    "13700137006,other,,30/06/2026\r\n"               # 10: bad date (format)
    ",other,no number,\r\n"                           # 11: missing phone
    ",,,\r\n"                                         # 12: empty cells: skipped
    "0086-138-0013-8001,patient_request,dup in file,\r\n"  # 13: already listed (line 2)
    "13600136007,other,x,,surplus\r\n"                # 14: too many columns
    f"13600136008,other,{'长' * 257},\r\n"            # 15: note too long
    "010-6552 9988,other,landline,2027-01-01"         # 16: good (Beijing landline), no EOL
)


def test_a_hostile_import_reports_each_bad_line_and_adds_the_good_ones(db: Database) -> None:
    with db.session() as s:  # already listed before the import, for the same reason
        add(s, _audit(), phone="+861065529988", reason=DncReason.OTHER,
            source=DncSource.CONSOLE, actor="user:a", now=NOW - dt.timedelta(days=1))
    with db.session() as s:
        result = import_csv(s, _audit(), HOSTILE, "cli:root", NOW, "CN", timezone=TZ)
    assert [(b.line, b.problem) for b in result.bad] == [
        (4, ImportProblem.BAD_NUMBER), (7, ImportProblem.UNKNOWN_REASON),
        (8, ImportProblem.BAD_DATE), (9, ImportProblem.BAD_DATE), (10, ImportProblem.BAD_DATE),
        (11, ImportProblem.MISSING_PHONE), (14, ImportProblem.TOO_MANY_COLUMNS),
        (15, ImportProblem.NOTE_TOO_LONG)]
    assert [b.value for b in result.bad][:3] == ["12345", "angry", "2026-02-30"]
    assert (result.imported, result.already_listed) == (2, 2)
    entries = _entries(db)
    assert entries[1:] == [
        ("+8613800138001", DncReason.PATIENT_REQUEST, DncSource.IMPORT, "first", None),
        ("+8613900139002", DncReason.WRONG_NUMBER, DncSource.IMPORT, "a, quoted\nnote",
         expiry(dt.date(2026, 6, 30), TZ))]
    assert expiry(dt.date(2026, 6, 30), TZ) == dt.datetime(2026, 6, 29, 16, 0, tzinfo=dt.UTC)
    imports = [d for a, _, d in _actions(db) if a == "dnc.import"]
    assert len(imports) == 1 and len(_actions(db)) == 2  # one add before, one import
    assert imports[0]["imported"] == 2 and imports[0]["already_listed"] == 2
    assert imports[0]["bad_lines"] == [4, 7, 8, 9, 10, 11, 14, 15]
    with db.session() as s:
        assert sorted(imports[0]["ids"]) == sorted(
            s.scalars(select(DoNotCall.id).where(DoNotCall.source == DncSource.IMPORT)))
        assert verify_chain(s, TEST_AUDIT_KEY).ok


def test_an_import_is_one_transaction(db: Database) -> None:
    """A failure after the lines were added (here: the caller's transaction fails) leaves
    none of them."""
    with pytest.raises(RuntimeError), db.session() as s:
        result = import_csv(s, _audit(), "phone\n13800138001\n13800138002\n", "cli:root",
                            NOW, "CN", timezone=TZ)
        assert result.imported == 2
        raise RuntimeError("the caller fails before its commit")
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(DoNotCall)) == 0
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == 0


@pytest.mark.parametrize("text", ["", "\n\n", "13800138001,other\n", "phone,reason,why\n",
                                  "reason,note\n", "phone,phone\n", "phone\n\x00\n"])
def test_a_file_without_a_usable_header_adds_nothing(db: Database, text: str) -> None:
    with db.session() as s, pytest.raises(InvalidRequest):
        import_csv(s, _audit(), text, "cli:root", NOW, "CN", timezone=TZ)
    assert _entries(db) == []


def test_encodings_utf8_with_or_without_bom_and_gbk_are_read_others_refused() -> None:
    text = "phone,note\n13800138001,患者本人要求\n"
    assert decode_csv(text.encode()) == text
    assert decode_csv(b"\xef\xbb\xbf" + text.encode()) == text
    assert decode_csv(text.encode("gbk")) == text
    with pytest.raises(InvalidRequest):
        decode_csv(text.encode("utf-16"))
    with pytest.raises(InvalidRequest):
        decode_csv(b"\x81\x30\x81")  # neither UTF-8 nor complete GB18030
