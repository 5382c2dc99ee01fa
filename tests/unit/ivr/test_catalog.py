from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from core.errors import FileValidationError
from ivr.catalog import scan_versions


def _write(root: Path, script_id: str, version: int, locale: str, extra: str = "") -> Path:
    path = root / script_id / f"v{version}" / f"{locale}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"id: {script_id}\nversion: {version}\nlocale: {locale}\n{extra}",
                    encoding="utf-8")
    return path


def test_scan_groups_locales_and_reads_dates(tmp_path: Path) -> None:
    _write(tmp_path, "post-operative", 1, "zh-CN", "valid_until: 2026-03-31\n")
    _write(tmp_path, "post-operative", 1, "en-US", "valid_until: 2026-03-31\n")
    _write(tmp_path, "post-operative", 2, "zh-CN", "valid_from: 2026-04-01\n")
    versions = scan_versions(tmp_path)
    assert [(v.script_id, v.version, v.locales) for v in versions] == [
        ("post-operative", 1, ("en-US", "zh-CN")), ("post-operative", 2, ("zh-CN",))]
    assert versions[0].valid_until == dt.date(2026, 3, 31)
    assert versions[1].valid_from == dt.date(2026, 4, 1)
    assert versions[0].valid_on(dt.date(2026, 3, 31))
    assert not versions[0].valid_on(dt.date(2026, 4, 1))


def test_header_disagreeing_with_path_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "a" / "v1" / "zh-CN.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("title: x\nid: b\nversion: 1\nlocale: zh-CN\n", encoding="utf-8")
    with pytest.raises(FileValidationError) as err:
        scan_versions(tmp_path)
    assert err.value.path == str(path) and err.value.line == 2 and err.value.field == "id"


def test_locales_of_one_version_must_agree_on_dates(tmp_path: Path) -> None:
    _write(tmp_path, "a", 1, "zh-CN", "valid_until: 2026-03-31\n")
    _write(tmp_path, "a", 1, "en-US", "valid_until: 2026-04-30\n")
    with pytest.raises(FileValidationError):
        scan_versions(tmp_path)


def test_bad_date_is_rejected(tmp_path: Path) -> None:
    _write(tmp_path, "a", 1, "zh-CN", "valid_from: soon\n")
    with pytest.raises(FileValidationError) as err:
        scan_versions(tmp_path)
    assert err.value.field == "valid_from" and err.value.line == 4


def test_missing_dir_is_empty(tmp_path: Path) -> None:
    assert scan_versions(tmp_path / "nope") == []
