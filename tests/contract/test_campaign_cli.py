"""`followup campaign pause|resume|status` from the command line (SQLite, real plan)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from core.store.db import Database
from core.store.models import AuditEntry, CampaignHold
from engine.cli import cli, main
from tests.contract.test_planning_cli import store

__all__ = ["store"]


def _run(tmp_path: Path, *args: str) -> tuple[int, str]:
    out = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), *args])
    return out.exit_code, out.output


def test_pause_status_resume_with_audit(store: Database, tmp_path: Path) -> None:
    assert _run(tmp_path, "plan")[0] == 0
    code, out = _run(tmp_path, "campaign", "status")
    assert code == 0 and "calling is not paused" in out
    code, out = _run(tmp_path, "campaign", "pause", "--department", "CARD",
                     "--reason", "ward round")
    assert (code, out.strip()) == (0, "department CARD paused")
    code, out = _run(tmp_path, "campaign", "pause", "--department", "CARD", "--reason", "x")
    assert (code, out.strip()) == (0, "nothing changed: department CARD is already paused")
    code, out = _run(tmp_path, "campaign", "status")
    assert "department CARD 心内科" in out and "ward round" in out and "cli:" in out
    code, out = _run(tmp_path, "tasks", "--status", "pending")
    assert code == 0 and out.count("pending (paused)") == 4, out
    code, out = _run(tmp_path, "campaign", "resume", "--department", "CARD")
    assert (code, out.strip()) == (0, "department CARD resumed")
    assert "paused" not in _run(tmp_path, "tasks", "--status", "pending")[1]
    with store.session() as s:
        holds = s.execute(select(CampaignHold.released_by, CampaignHold.reason)).all()
        actions = s.scalars(select(AuditEntry.action)
                            .where(AuditEntry.action.like("campaign.%"))).all()
    assert [(by is not None and by.startswith("cli:"), why) for by, why in holds] == [
        (True, "ward round")]
    assert actions == ["campaign.pause", "campaign.resume"]


def test_bad_targets_are_one_plain_line(store: Database, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    for argv, expected in (
            (["campaign", "pause", "--department", "NOPE", "--reason", "r"],
             "error [not_found]: no department with code 'NOPE'"),
            (["campaign", "pause", "--all", "--reason", " "],
             "error [invalid_request]: a pause needs a reason"),
            (["campaign", "pause", "--all", "--department", "CARD", "--reason", "r"],
             "Error: name exactly one of --all, --department or --script")):
        monkeypatch.setattr("sys.argv", ["followup", "--data-dir", str(tmp_path), *argv])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        err = capsys.readouterr().err.strip()
        assert code != 0 and "Traceback" not in err
        assert err.splitlines()[-1].startswith(expected), err
