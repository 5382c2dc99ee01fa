"""Sources: (watermark, key) order, exact resume, groups never split, errors translated."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import OperationalError, ProgrammingError

from core.errors import SourceError, SourceUnavailable
from hisync.mapping import DEFAULT_MAPPING, load_mapping
from hisync.sources import FileSource, Mark, SqlSource, open_source, regroup, translate_db_error
from hisync.synthetic import export_csv, generate_his
from hisync.testing import InMemorySource

MAPPING = load_mapping(DEFAULT_MAPPING)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3)), max_size=60),
       st.integers(1, 7))
def test_regroup_never_splits_a_group(pairs: list[tuple[int, int]], size: int) -> None:
    rows = sorted(pairs)
    parts = [rows[i:i + size] for i in range(0, len(rows), size)]
    batches = list(regroup(parts, 0, 1))
    assert [r for b in batches for r in b.rows] == rows
    for a, b in itertools.pairwise(batches):
        assert a.rows[-1] != b.rows[0]  # equal (wm, key) rows are never cut apart
    for b in batches:
        assert b.last == Mark(str(b.rows[-1][0]), str(b.rows[-1][1]))


@pytest.fixture(scope="module")
def his(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("his") / "his.sqlite"
    generate_his(path, patients=120)
    return path


def _all(source: object, entity: str, after: Mark | None, size: int) -> list[tuple[object, ...]]:
    spec = MAPPING.entity(entity)
    return [r for b in source.batches(spec, after, size) for r in b.rows]  # type: ignore[attr-defined]


def test_sql_source_orders_and_resumes_exactly_inside_ties(his: Path) -> None:
    src = SqlSource(f"sqlite:///{his}")
    rows = _all(src, "patients", None, 1000)
    cols = MAPPING.patients.source_columns
    wm, key = cols.index("updated_at"), cols.index("patient_id")
    assert [(r[wm], r[key]) for r in rows] == sorted((r[wm], r[key]) for r in rows)
    assert src.count(MAPPING.patients, None) == len(rows)
    for cut in (1, 2, 50, 77, 101):  # rows tie in threes: some cuts fall inside a tie
        while (rows[cut - 1][wm], rows[cut - 1][key]) == (rows[cut][wm], rows[cut][key]):
            cut += 1  # a mark is never inside a duplicate group (regroup keeps them whole)
        after = Mark(str(rows[cut - 1][wm]), str(rows[cut - 1][key]))
        assert _all(src, "patients", after, 7) == rows[cut:]
        assert src.count(MAPPING.patients, after) == len(rows) - cut
    src.close()


def test_csv_and_xlsx_sources_read_the_same_rows(his: Path, tmp_path: Path) -> None:
    from openpyxl import Workbook

    export_csv(his, tmp_path / "csv")
    sql = SqlSource(f"sqlite:///{his}")
    csv_src = open_source(str(tmp_path / "csv" / "his_patients.csv"))
    assert isinstance(csv_src, FileSource)
    assert _all(csv_src, "encounters", None, 50) == _all(sql, "encounters", None, 50)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "his_patients"
    conn = sqlite3.connect(his)
    cols = MAPPING.patients.source_columns
    sheet.append(list(cols))
    for row in conn.execute(f"SELECT {', '.join(cols)} FROM his_patients LIMIT 30"):
        sheet.append(list(row))
    conn.close()
    book.save(tmp_path / "his.xlsx")
    xlsx = open_source(str(tmp_path / "his.xlsx"))
    got = _all(xlsx, "patients", None, 100)
    assert len(got) == 30
    assert set(got) <= set(_all(sql, "patients", None, 1000))
    for s in (sql, csv_src, xlsx):
        s.close()


def test_query_mapping_reads_through_a_subquery(his: Path) -> None:
    spec = MAPPING.patients.model_copy(update={
        "table": None, "query": "SELECT * FROM his_patients WHERE sex_code = '1'"})
    src = SqlSource(f"sqlite:///{his}")
    rows = [r for b in src.batches(spec, None, 10) for r in b.rows]
    assert rows and all(r[spec.source_columns.index("sex_code")] == "1" for r in rows)


def test_permanent_and_temporary_errors(his: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        SqlSource(f"sqlite:///{tmp_path / 'missing.sqlite'}")
    assert not (tmp_path / "missing.sqlite").exists()  # never creates an empty HIS
    spec = MAPPING.patients.model_copy(update={"table": "no_such_table"})
    with pytest.raises(SourceError, match="no such table") as info:
        list(SqlSource(f"sqlite:///{his}").batches(spec, None, 10))
    assert not isinstance(info.value, SourceUnavailable)
    locked = OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked"))
    assert isinstance(translate_db_error(locked, "reading"), SourceUnavailable)
    refused = OperationalError("connect", {}, Exception("connection refused"))
    assert isinstance(translate_db_error(refused, "reading"), SourceUnavailable)
    bad_sql = ProgrammingError("SELECT", {}, Exception("syntax error at or near"))
    err = translate_db_error(bad_sql, "reading")
    assert isinstance(err, SourceError) and not isinstance(err, SourceUnavailable)
    with pytest.raises(SourceError):
        open_source(str(tmp_path / "nothing-here"))


def test_in_memory_source_keeps_the_same_contract() -> None:
    rows = [{"patient_id": f"P{i % 5}", "updated_at": f"2026-01-0{1 + i // 5}", "mrn": "m"}
            for i in range(15)] + [{"patient_id": "P9", "updated_at": None}]
    src = InMemorySource({"his_patients": rows})
    spec = MAPPING.patients
    got = _all(src, "patients", None, 4)
    cols = spec.source_columns
    wm, key = cols.index("updated_at"), cols.index("patient_id")
    assert got[0][wm] is None  # empty watermarks first, as in SQL
    assert _all(src, "patients", Mark("2026-01-02", "P1"), 3) == [
        r for r in got if r[wm] is not None and (r[wm], r[key]) > ("2026-01-02", "P1")]


def test_gbk_csv_exports_are_read(his: Path, tmp_path: Path) -> None:
    export_csv(his, tmp_path / "utf8")
    (tmp_path / "gbk").mkdir()
    for f in (tmp_path / "utf8").glob("*.csv"):
        text = f.read_text(encoding="utf-8")
        (tmp_path / "gbk" / f.name).write_bytes(text.encode("gb18030"))  # GBK + Hangul
    utf8, gbk = FileSource(tmp_path / "utf8"), FileSource(tmp_path / "gbk")
    rows = _all(gbk, "patients", None, 500)
    assert rows == _all(utf8, "patients", None, 500)
    assert any("王" in str(r) for r in rows)
    utf8.close()
    gbk.close()
