"""`followup sms list|templates`: words, not stored values; names, not only ids; local
time; every error one plain line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from core.enums import MessageBlock, MessagePurpose, MessageStatus
from core.store.db import Database
from core.store.models import SmsMessage
from tests.contract.test_claims import _seed
from tests.unit.engine.test_tickets_cli import run

AT = dt.datetime(2026, 3, 10, 2, 5, tzinfo=dt.UTC)  # 10:05 in Shanghai


@pytest.fixture
def store(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    monkeypatch.setenv("FOLLOWUP_DATABASE__URL", db.url)
    monkeypatch.chdir(tmp_path)
    _seed(db, [{}], [{}])
    with db.session() as s:
        for status, block in ((MessageStatus.DELIVERED, None),
                              (MessageStatus.BLOCKED, MessageBlock.OPTED_OUT)):
            s.add(SmsMessage(patient_id=1, department_id=1,
                             purpose=MessagePurpose.QUESTIONNAIRE_LINK,
                             template="questionnaire_link", locale="zh-CN",
                             phone="+8613800138001", body="x", encoding="ucs2", segments=2,
                             status=status, block_reason=block, tries=1, next_try_at=AT,
                             created_at=AT))
    return db


def test_list_says_what_happened_in_words(store: Database, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["sms", "list", "--patient", "1"], tmp_path, monkeypatch, capsys)
    assert code == 0, err
    assert "病人1" in out and "Delivered" in out and "Patient opted out" in out
    assert "Questionnaire link" in out and "03-10 10:05" in out
    assert "(times in Asia/Shanghai)" in out
    for raw in ("delivered", "opted_out", "questionnaire_link"):
        assert raw not in out
    code, out, err = run(["sms", "list", "--status", "failed"], tmp_path, monkeypatch, capsys)
    assert code == 0 and "no messages" in out
    code, out, err = run(["sms", "list", "--status", "lost"], tmp_path, monkeypatch, capsys)
    assert code == 2 and "Traceback" not in err and "'lost' is not one of" in err


def test_templates_show_the_counter(store: Database, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["sms", "templates"], tmp_path, monkeypatch, capsys)
    assert code == 0, err
    assert "questionnaire_link [zh-CN]: 85 characters, UCS-2, 2 parts" in out
    assert "回复TD退订" in out
