"""`followup tickets list|claim|close|release|reassign` on each store: the command line acts
as the named console user through the console's service (same departments, rights and
audit entries); words, not stored values; names, not ids; local time, not UTC; every
error one plain line."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from core.enums import TaskStatus, TicketStatus
from core.store.db import Database
from core.store.models import AuditEntry, FollowupTask, Ticket
from engine.cli import main
from tests.unit.console.worklist_seed import TZ, WINDOW, Ward, seed_ward

LOCAL = dt.timezone(dt.timedelta(hours=8))  # Asia/Shanghai keeps no summer time


@pytest.fixture
def ward(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Ward:
    monkeypatch.setenv("FOLLOWUP_DATABASE__URL", db.url)
    monkeypatch.chdir(tmp_path)
    return seed_ward(db, dt.datetime.now(dt.UTC))  # the command line runs on the wall clock


def run(argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.argv", ["followup", "--data-dir", str(tmp_path), *argv])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error_line(code: int, out: str, err: str) -> str:
    assert code != 0 and "Traceback" not in out + err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_list_in_words_names_and_local_time(
        ward: Ward, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["tickets", "list", "--user", "sup_card"], tmp_path, monkeypatch,
                         capsys)
    assert code == 0, err
    assert "王芳" in out and "陈静" in out and "刘洋" not in out  # not oncology's
    assert "Not reached after the last attempt" in out and "attempts_exhausted" not in out
    assert "张敏" in out and f"({TZ})" in out and "UTC" not in out
    assert "5 h" in out and "2 tickets" in out
    due = dt.datetime.now(dt.UTC) + dt.timedelta(hours=67)
    assert due.astimezone(LOCAL).strftime("%Y-%m-%d") in out
    code, out, _ = run(["tickets", "list", "--mine", "--user", "agent_a"], tmp_path,
                       monkeypatch, capsys)
    assert code == 0 and "王芳" in out and "陈静" not in out and "1 tickets" in out
    code, out, _ = run(["tickets", "list", "--department", "ONC"], tmp_path, monkeypatch,
                       capsys)  # without --user: every department
    assert code == 0 and "刘洋" in out and "王芳" not in out
    code, out, err = run(["tickets", "list", "--mine"], tmp_path, monkeypatch, capsys)
    assert code == 2 and err.splitlines()[-1] == "Error: --mine needs --user NAME"  # usage


def test_claim_close_with_a_callback_and_the_errors(
        ward: Ward, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["tickets", "claim", str(ward.open_ticket), "--user", "agent_b"],
                       tmp_path, monkeypatch, capsys)
    assert code == 0 and "claimed by 李娜 (agent_b)" in out
    again = one_error_line(*run(["tickets", "claim", str(ward.open_ticket), "--user",
                                 "agent_a"], tmp_path, monkeypatch, capsys))
    assert again == "Error: ticket: was already claimed"
    tomorrow = (dt.datetime.now(LOCAL) + dt.timedelta(days=1)).date()
    close = ["tickets", "close", str(ward.open_ticket), "--user", "agent_b",
             "--disposition", "call_back", "--callback-at"]
    outside = one_error_line(*run([*close, f"{tomorrow} 12:30"], tmp_path, monkeypatch,
                                  capsys))
    assert WINDOW in outside and outside.startswith("Error: callback_at: must be")
    bad = one_error_line(*run([*close, "tomorrow"], tmp_path, monkeypatch, capsys))
    assert bad == "Error: callback_at: is not a date and time"
    code, out, _ = run([*close, f"{tomorrow} 15:00"], tmp_path, monkeypatch, capsys)
    assert code == 0 and f"closed: Call back later at {tomorrow} 15:00 ({TZ})" in out
    at = dt.datetime.combine(tomorrow, dt.time(15, 0), LOCAL).astimezone(dt.UTC)
    with db.session() as s:
        task = s.get(FollowupTask, ward.other_task)
        t = s.get(Ticket, ward.open_ticket)
        assert task is not None and t is not None
        assert (task.status, task.next_attempt_at, task.callback_at) == (
            TaskStatus.PENDING, at, at)
        assert t.status is TicketStatus.CLOSED and t.disposition == "call_back"
        actors = {e.actor for e in s.execute(select(AuditEntry).where(
            AuditEntry.action.in_(["ticket.claim", "ticket.close", "task.callback"])))
            .scalars()}
    assert actors == {"user:agent_b"}
    gone = one_error_line(*run(["tickets", "claim", str(ward.ticket), "--user", "nobody"],
                               tmp_path, monkeypatch, capsys))
    assert gone == "error [not_found]: no active console user 'nobody'"
    other = one_error_line(*run(["tickets", "close", str(ward.onc_ticket), "--user", "agent_a",
                                 "--disposition", "deceased"], tmp_path, monkeypatch, capsys))
    assert other == f"error [not_found]: ticket {ward.onc_ticket} not found"


def test_reassign_by_a_supervisor_only(
        ward: Ward, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    reassign = ["tickets", "reassign", str(ward.ticket), "--to", "agent_b", "--user"]
    refused = one_error_line(*run([*reassign, "agent_b"], tmp_path, monkeypatch, capsys))
    assert re.fullmatch(r"error \[permission_denied\]: agent_b may not hand over ticket \d+",
                        refused)
    manager = one_error_line(*run([*reassign, "mgr_card"], tmp_path, monkeypatch, capsys))
    assert manager == "error [permission_denied]: mgr_card may not use worklist"
    code, out, _ = run([*reassign, "sup_card"], tmp_path, monkeypatch, capsys)
    assert code == 0 and "reassigned to 李娜 (agent_b)" in out
    code, out, _ = run(["tickets", "list", "--mine", "--user", "agent_b"], tmp_path,
                       monkeypatch, capsys)
    assert "王芳" in out
    with db.session() as s:
        entries = [(e.actor, e.detail) for e in s.execute(select(AuditEntry).where(
            AuditEntry.action == "ticket.reassign")).scalars()]
    assert entries == [("user:sup_card", {"from_user": "agent_a", "to_user": "agent_b"})]
    ineligible = one_error_line(*run(["tickets", "reassign", str(ward.ticket), "--to",
                                      "agent_onc", "--user", "sup_card"],
                                     tmp_path, monkeypatch, capsys))
    assert ineligible == "Error: user_id: cannot work this department's tickets"
    code, out, _ = run(["tickets", "release", str(ward.ticket), "--user", "sup_card"],
                       tmp_path, monkeypatch, capsys)
    assert code == 0 and "open again" in out
