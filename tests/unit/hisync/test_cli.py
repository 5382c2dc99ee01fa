"""`followup his ...` end to end through click: synth, sync, rejects, runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import cli
from hisync.synthetic import Manifest, manifest_path


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ("FOLLOWUP_CONFIG", "FOLLOWUP_HIS__SOURCE", "FOLLOWUP_HIS__WORKERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FOLLOWUP_HIS__WORKERS", "1")
    return CliRunner()


def test_synth_sync_rejects_runs(runner: CliRunner, tmp_path: Path) -> None:
    his, data = tmp_path / "his.sqlite", str(tmp_path / "var")
    out = runner.invoke(cli, ["his", "synth", "--out", str(his), "--patients", "120",
                              "--csv", str(tmp_path / "csv")])
    assert out.exit_code == 0, out.output
    manifest = Manifest.from_json(manifest_path(his).read_text(encoding="utf-8"))
    assert (tmp_path / "csv" / "his_encounters.csv").exists()
    assert runner.invoke(cli, ["--data-dir", data, "init"]).exit_code == 0

    first = runner.invoke(cli, ["--data-dir", data, "his", "sync", "--source",
                                f"sqlite:///{his}"])
    assert first.exit_code == 0, first.output
    broken = sum(b.rows for b in manifest.broken)
    assert "completed" in first.output and f"{manifest.total_rows}" in first.output
    assert f"{broken}" in first.output and "followup his rejects" in first.output

    again = runner.invoke(cli, ["--data-dir", data, "his", "sync", "--source",
                                f"sqlite:///{his}", "--full"])
    assert again.exit_code == 0
    total_line = next(line for line in again.output.splitlines() if "total" in line)
    cells = [c.strip() for c in total_line.strip("│┃ ").split("│")]
    assert cells[1:4] == [str(manifest.total_rows), "0", "0"]  # read, new, changed

    listed = runner.invoke(cli, ["--data-dir", data, "his", "rejects", "--reason",
                                 "unknown_department", "--limit", "500"])
    assert listed.exit_code == 0
    bad_depts = [b.row_key for b in manifest.broken if b.reason.value == "unknown_department"]
    assert all(key in listed.output for key in bad_depts)
    assert f"{len(bad_depts)} of {len(bad_depts)}" in listed.output
    assert "fixed" not in listed.output
    with_fixed = runner.invoke(cli, ["--data-dir", data, "his", "rejects", "--all"])
    assert with_fixed.exit_code == 0 and "fixed" in with_fixed.output  # nothing fixed yet

    runs = runner.invoke(cli, ["--data-dir", data, "his", "runs"])
    assert runs.exit_code == 0 and runs.output.count("completed") == 2


def test_sync_without_source_names_the_setting(runner: CliRunner, tmp_path: Path) -> None:
    data = str(tmp_path / "var")
    runner.invoke(cli, ["--data-dir", data, "init"])
    result = runner.invoke(cli, ["--data-dir", data, "his", "sync"], standalone_mode=False)
    assert result.exception is not None and "his.source" in str(result.exception)


def test_rejects_show_what_the_his_sent_verbatim(runner: CliRunner, tmp_path: Path) -> None:
    """Rich reads `[...]` as markup: `[/]` crashed the listing, `[red]555[/red]` lost its
    brackets; control characters must not reach the terminal."""
    from tests.contract.test_hisync_hostile import patient, write_extract

    folder = tmp_path / "csv"
    write_extract(folder)
    with (folder / "his_patients.csv").open("a", encoding="utf-8") as f:
        row = patient("[red]555[/red]", birth_date="[/] not a date")
        f.write(",".join(row.values()) + "\n")
    data = str(tmp_path / "var")
    assert runner.invoke(cli, ["--data-dir", data, "init"]).exit_code == 0
    synced = runner.invoke(cli, ["--data-dir", data, "his", "sync", "--source", str(folder)])
    assert synced.exit_code == 0, synced.output
    listed = runner.invoke(cli, ["--data-dir", data, "his", "rejects", "--limit", "100"])
    assert listed.exit_code == 0, listed.output
    assert "[red]555[/red]" in listed.output
    assert "'[/] not a date'" in listed.output
    assert "\u202e" not in listed.output and "\x1b" not in listed.output
