"""Every CLI error is one plain line with a code, never a traceback: each command on a store
never initialised, with a database URL that is not one, and with a settings file that is
missing or names an unknown key (the message names the file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli import main

# Commands that read or write the store (the daemon and the console have their own
# preflight, tested in test_doctor.py).
STORE_COMMANDS = [
    ["tasks"], ["plan"], ["dial", "--backend", "sim"], ["his", "rejects"], ["his", "runs"],
    ["his", "sync", "--source", "sqlite:///nowhere.sqlite"], ["audit", "verify"],
    ["users", "list"], ["report", "snapshots"], ["report", "monthly", "--department", "CARD"],
]


def run(argv: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    monkeypatch.setattr("sys.argv", ["followup", *argv])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.err


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("FOLLOWUP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _one_plain_line(code: int, err: str) -> str:
    assert code != 0
    assert "Traceback" not in err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert lines, "no message at all"
    assert lines[-1].startswith(("error [", "Error:")), lines
    return lines[-1]


@pytest.mark.parametrize("argv", STORE_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_on_a_store_never_initialised(argv: list[str], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(["--data-dir", str(tmp_path / "fresh"), *argv], monkeypatch, capsys)
    _one_plain_line(code, err)
    if argv[:2] != ["his", "sync"]:  # that one first says the HIS file is not there
        assert "followup init" in err, err  # (a preflight says it on its problem line)


@pytest.mark.parametrize("url", ["notaurl", "mysqlx://host/db", "postgresql+nodriver://h/d"])
@pytest.mark.parametrize("argv", STORE_COMMANDS[:4], ids=lambda a: " ".join(a[:2]))
def test_with_a_database_url_that_cannot_be_used(argv: list[str], url: str,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FOLLOWUP_DATABASE__URL", url)
    line = _one_plain_line(*run(argv, monkeypatch, capsys))
    assert "database.url" in line


def test_with_a_settings_file_missing_or_wrong(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    missing = _one_plain_line(*run(["-c", str(tmp_path / "nope.toml"), "tasks"],
                                   monkeypatch, capsys))
    assert "nope.toml" in missing
    bad = tmp_path / "followup.toml"
    bad.write_text("[dialer]\nmax_chanels = 3\n", encoding="utf-8")
    wrong = _one_plain_line(*run(["-c", str(bad), "tasks"], monkeypatch, capsys))
    assert "dialer.max_chanels" in wrong and str(bad) in wrong
    broken = tmp_path / "broken.toml"
    broken.write_text("[dialer\n", encoding="utf-8")
    assert str(broken) in _one_plain_line(*run(["-c", str(broken), "tasks"], monkeypatch,
                                                capsys))
