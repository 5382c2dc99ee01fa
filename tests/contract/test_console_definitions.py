"""The scripts and rules viewer's engine-side source: the real loaders validate each file."""

from __future__ import annotations

from pathlib import Path

from core.settings import REPO_ROOT
from engine.console_app import EngineDefinitions


def test_shipped_scripts_and_rules_all_validate() -> None:
    source = EngineDefinitions(REPO_ROOT / "scripts", [str(REPO_ROOT / "followup_rules" /
                                                         "rules")], "09:00-20:00")
    files = source.definitions()
    kinds = {f.kind for f in files}
    assert kinds == {"script", "rules"}
    assert any(f.name == "inpatient-satisfaction/v1/zh-CN.yaml" for f in files)
    bad = [(f.name, f.problem) for f in files if not f.valid]
    assert bad == []
    assert all(f.text for f in files)


def test_a_broken_rule_file_is_listed_with_its_problem(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "broken.yaml").write_text("rules:\n  - id: x\n    match: {age: {min: old}}\n")
    scripts = tmp_path / "scripts" / "demo" / "v1"
    scripts.mkdir(parents=True)
    (scripts / "en-US.yaml").write_text("id: demo\nversion: 1\nlocale: en-US\n")
    files = EngineDefinitions(tmp_path / "scripts", [str(rules)], "09:00-20:00").definitions()
    by_name = {f.name: f for f in files}
    assert not by_name["broken.yaml"].valid and "broken.yaml" in by_name["broken.yaml"].problem
    assert not by_name["demo/v1/en-US.yaml"].valid


def test_a_missing_rules_folder_is_one_invalid_entry(tmp_path: Path) -> None:
    files = EngineDefinitions(tmp_path, [str(tmp_path / "nope")], "09:00-20:00").definitions()
    assert [(f.kind, f.valid) for f in files] == [("rules", False)]
