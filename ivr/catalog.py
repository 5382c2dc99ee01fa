"""The catalogue of question scripts on disk: which script ids and versions exist.

Layout: `scripts/<script_id>/v<N>/<locale>.yaml`. Each file starts with a header of
top-level keys `id`, `version`, `locale`, optional `valid_from` / `valid_until` (ISO dates,
inclusive) and `title`. `scan_versions` reads only these headers (the full script is parsed
by `ivr.script_loader`), checks that they agree with the path, and that every locale of one
version carries the same validity dates. The rules planner uses it to pick the version valid
on the call day.

Raises `core.errors.FileValidationError` (file, line, field) on a header that is missing a
key, disagrees with its path, or contradicts a sibling locale.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.domain import ScriptVersion
from core.errors import FileValidationError
from core.yamlfile import LineMap, load_yaml_with_lines

_VERSION_DIR = re.compile(r"^v([1-9][0-9]*)$")
_SCRIPT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_LOCALE = re.compile(r"^[a-z]{2,3}-[A-Z]{2}$")


@dataclass(frozen=True, slots=True)
class ScriptHeader:
    """The header of one script file."""

    path: Path
    script_id: str
    version: int
    locale: str
    title: str
    valid_from: dt.date | None
    valid_until: dt.date | None


def script_files(scripts_dir: Path) -> list[Path]:
    """Every `<script_id>/v<N>/<locale>.yaml` file under `scripts_dir`, sorted."""
    out: list[Path] = []
    if not scripts_dir.is_dir():
        return out
    for path in sorted(scripts_dir.glob("*/v*/*.yaml")):
        if _VERSION_DIR.match(path.parent.name):
            out.append(path)
    return out


def _date(data: dict[str, Any], key: str, lines: LineMap) -> dt.date | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError:
            raise lines.error((key,), "must be a date (YYYY-MM-DD)") from None
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise lines.error((key,), "must be a date (YYYY-MM-DD)")
    return value


def parse_header(path: Path, data: Any, lines: LineMap) -> ScriptHeader:
    """Check the header keys of an already-loaded script document against its path."""
    if not isinstance(data, dict):
        raise lines.error((), "a script file must be a mapping")
    for key in ("id", "version", "locale"):
        if key not in data:
            raise lines.error((key,), "missing")
    script_id, version, locale = data["id"], data["version"], data["locale"]
    if not isinstance(script_id, str) or not _SCRIPT_ID.match(script_id):
        raise lines.error(("id",), "must be lower-case letters, digits and dashes")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise lines.error(("version",), "must be a positive integer")
    if not isinstance(locale, str) or not _LOCALE.match(locale):
        raise lines.error(("locale",), "must look like zh-CN")
    version_dir = _VERSION_DIR.match(path.parent.name)
    if version_dir is not None:
        if path.parent.parent.name != script_id:
            raise lines.error(("id",), f"{script_id!r} does not match the folder "
                                       f"{path.parent.parent.name!r}")
        if int(version_dir.group(1)) != version:
            raise lines.error(("version",), f"{version} does not match the folder "
                                            f"{path.parent.name!r}")
        if path.stem != locale:
            raise lines.error(("locale",), f"{locale!r} does not match the file name")
    title = data.get("title", "")
    if not isinstance(title, str):
        raise lines.error(("title",), "must be text")
    valid_from = _date(data, "valid_from", lines)
    valid_until = _date(data, "valid_until", lines)
    if valid_from and valid_until and valid_until < valid_from:
        raise lines.error(("valid_until",), "is before valid_from")
    return ScriptHeader(path, script_id, version, locale, title, valid_from, valid_until)


def read_header(path: Path) -> ScriptHeader:
    """Load one script file and return its checked header."""
    data, lines = load_yaml_with_lines(path)
    return parse_header(path, data, lines)


def scan_versions(scripts_dir: Path) -> list[ScriptVersion]:
    """Every (script id, version) under `scripts_dir`, with its dates and locales.

    Sorted by script id then version. Raises FileValidationError on a bad header or when
    two locales of one version disagree on their dates.
    """
    grouped: dict[tuple[str, int], list[ScriptHeader]] = {}
    for path in script_files(scripts_dir):
        header = read_header(path)
        grouped.setdefault((header.script_id, header.version), []).append(header)
    out: list[ScriptVersion] = []
    for (script_id, version), headers in sorted(grouped.items()):
        first = headers[0]
        for other in headers[1:]:
            if (other.valid_from, other.valid_until) != (first.valid_from, first.valid_until):
                raise FileValidationError(
                    str(other.path), None, "valid_from/valid_until",
                    f"differs from {first.path.name} of the same version")
        out.append(ScriptVersion(
            script_id=script_id, version=version, valid_from=first.valid_from,
            valid_until=first.valid_until,
            locales=tuple(sorted(h.locale for h in headers))))
    return out
