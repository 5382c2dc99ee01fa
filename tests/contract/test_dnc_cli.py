"""`followup dnc list|add|remove|import` from the command line (SQLite): audited as
`cli:<login>`, each bad import line printed, every error one plain line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from core.enums import DncReason, DncSource
from core.store.db import Database
from core.store.models import AuditEntry, DoNotCall
from engine.cli import cli, main
from tests.contract.test_planning_cli import store

__all__ = ["store"]


def _run(tmp_path: Path, *args: str) -> tuple[int, str]:
    out = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), *args])
    return out.exit_code, out.output


def _entries(db: Database) -> list[tuple[str, DncReason, DncSource, bool, bool]]:
    with db.session() as s:
        return [(e.phone, e.reason, e.source, e.added_by.startswith("cli:"),
                 e.removed_at is not None)
                for e in s.execute(select(DoNotCall).order_by(DoNotCall.id)).scalars()]


def _actions(db: Database) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(AuditEntry.action).where(AuditEntry.action.like("dnc.%"))
                              .order_by(AuditEntry.id)))


def test_add_list_remove(store: Database, tmp_path: Path) -> None:
    code, out = _run(tmp_path, "dnc", "add", "138 0013 8000", "--reason", "wrong_number",
                     "--note", "HIS 待更正", "--expires", "2099-01-01")
    assert code == 0 and out.startswith("+8613800138000 added to the do-not-call list")
    code, out = _run(tmp_path, "dnc", "add", "+86 138-0013-8000", "--reason", "wrong_number")
    assert (code, out.strip()) == (0, "nothing changed: +8613800138000 is already on the "
                                      "list (wrong number)")
    code, out = _run(tmp_path, "dnc", "list", "--search", "8000")
    assert code == 0 and "wrong number" in out and "HIS 待更正" in out and "2099-01-01 00:00" \
        in out and "Asia/Shanghai" in out and "command line" in out
    assert out.strip().endswith("1 entries")
    with store.session() as s:
        entry_id = s.scalars(select(DoNotCall.id)).one()
    code, out = _run(tmp_path, "dnc", "remove", str(entry_id), "--why", "fixed in the HIS")
    assert (code, out.strip()) == (0, f"entry {entry_id} removed")
    code, out = _run(tmp_path, "dnc", "remove", str(entry_id), "--why", "again")
    assert code == 0 and out.startswith("nothing changed: ")
    assert _run(tmp_path, "dnc", "list")[1].strip() == "0 entries"
    code, out = _run(tmp_path, "dnc", "list", "--all")
    assert "removed by cli:" in out
    assert _entries(store) == [("+8613800138000", DncReason.WRONG_NUMBER, DncSource.CLI,
                                True, True)]
    assert _actions(store) == ["dnc.add", "dnc.remove"]


def test_import_prints_each_bad_line_and_exits_1(store: Database, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_bytes("phone,note\n13800138001,本人要求\n".encode("gbk"))
    assert _run(tmp_path, "dnc", "import", str(good)) == (
        0, "imported 1, already on the list 0, bad lines 0\n")
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("\ufeffphone,reason,note,expires\n13800138001,,again,\n"
                     "999,other,,\n\n13800138002,rude,,\n13800138003,other,,2020-01-01\n"
                     ",other,,\n13800138004,wrong_number,,\n13800138005,other,,\x1b[2J\n",
                     encoding="utf-8")
    code, out = _run(tmp_path, "dnc", "import", str(mixed))
    assert code == 1
    assert out.splitlines() == [
        "line 3: bad number (999)", "line 5: unknown reason (rude)",
        "line 6: bad date (YYYY-MM-DD, after today) (2020-01-01)", "line 7: no phone number",
        "line 9: bad date (YYYY-MM-DD, after today) (\\u001b[2J)",
        "imported 1, already on the list 1, bad lines 5"]
    assert [e[0] for e in _entries(store)] == ["+8613800138001", "+8613800138004"]
    assert _actions(store) == ["dnc.import", "dnc.import"]


@pytest.mark.parametrize(("argv", "expected"), [
    (["dnc", "add", "12345"], "Error: Invalid value for PHONE: '12345' is not a valid"),
    (["dnc", "add", "13800138000", "--expires", "2000-01-01"],
     "Error: Invalid value for --expires: must be a day after today"),
    (["dnc", "add", "13800138000", "--reason", "angry"], "Error: Invalid value for '--reason'"),
    (["dnc", "remove", "99", "--why", "x"], "error [not_found]: no do-not-call entry 99"),
    (["dnc", "remove", "99", "--why", " "], "error [invalid_request]: a removal needs a reason"),
    (["dnc", "remove", "99"], "Error: Missing option '--why'"),
    (["dnc", "import", "nope.csv"], "Error: Invalid value for 'FILE'"),
    (["dnc", "import", "{bad}"], "error [invalid_request]: the first line must be a header"),
    (["dnc", "import", "{utf16}"], "error [invalid_request]: the file is not a text CSV"),
])
def test_errors_are_one_plain_line(store: Database, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str], argv: list[str],
                                   expected: str) -> None:
    (tmp_path / "bad.csv").write_text("13800138000,other\n", encoding="utf-8")
    (tmp_path / "utf16.csv").write_text("phone\n13800138000\n", encoding="utf-16")
    argv = [a.format(bad=tmp_path / "bad.csv", utf16=tmp_path / "utf16.csv") for a in argv]
    monkeypatch.setattr("sys.argv", ["followup", "--data-dir", str(tmp_path), *argv])
    with pytest.raises(SystemExit) as exited:
        main()
    err = capsys.readouterr().err.strip()
    assert exited.value.code == 2 and "Traceback" not in err
    assert err.splitlines()[-1].startswith(expected), err
    assert _entries(store) == []
