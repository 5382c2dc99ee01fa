"""Read rule files (YAML) into a `RuleSet`, rejecting any mistake with file, line and field.

A rule file looks like::

    defaults:                      # optional, applies to the rules of this file
      calling_window: "09:00-11:30,14:00-19:30"
      priority: 50                 # 1 = most urgent ... 100 = least
      max_attempts: 3
    rules:
      - id: cardiology-post-discharge
        description: Check on patients discharged from cardiology
        match:                     # every key is optional; a list matches if any item does
          encounter_types: [inpatient]
          departments: [CARD]
          icd10_prefixes: [I20, I21]
          procedures: []
          age: {min: 18}
          length_of_stay_days: {min: 1, max: 60}
          dispositions: [home]
          exclude_dispositions: [died, transferred]
        followups:
          - {offset: +3d, script: cardiology-post-discharge, priority: 20}
          - {offset: +30d, script: cardiology-post-discharge}
        reminders:                 # message-only follow-ups (SMS), optional
          - {offset: +1d, message: medication_reminder, days: 7}
          - {offset: +14d, message: revisit_reminder}

A rule needs `followups`, `reminders` or both.

Every problem raises `core.errors.FileValidationError` naming the file, the line and the
field (e.g. `rules.0.followups.1.offset`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from core.calling_window import CallingWindow, CallingWindowError, parse_calling_window
from core.enums import EncounterType, MessagePurpose
from core.errors import ConfigError, FileValidationError
from core.sms_templates import TEMPLATES
from core.yamlfile import LineMap, load_yaml_with_lines
from followup_rules.model import (
    DEFAULT_LATE_GRACE_DAYS,
    Criteria,
    FollowupSpec,
    Range,
    ReminderSpec,
    Rule,
    RuleSet,
)

Loc = tuple[str | int, ...]

_OFFSET = re.compile(r"^\+?(\d{1,3})d$")
_IDENT = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
_ICD10 = re.compile(r"^[A-Z][0-9][0-9A-Z]{0,5}$|^[A-Z]$")

_TOP_KEYS = {"defaults", "rules"}
_DEFAULT_KEYS = {"calling_window", "priority", "max_attempts"}
_RULE_KEYS = {"id", "description", "match", "followups", "reminders", "calling_window",
              "priority", "max_attempts"}
_MATCH_KEYS = {"encounter_types", "departments", "icd10_prefixes", "procedures", "age",
               "length_of_stay_days", "dispositions", "exclude_dispositions"}
_FOLLOWUP_KEYS = {"offset", "script", "priority", "max_attempts"}
_REMINDER_KEYS = {"offset", "message", "days"}
_REMINDERS = sorted(k for k, t in TEMPLATES.items() if t.purpose is MessagePurpose.REMINDER)
_RANGE_KEYS = {"min", "max"}

DEFAULT_PRIORITY = 50
DEFAULT_MAX_ATTEMPTS = 3


def rule_files(paths: Iterable[str | Path]) -> list[Path]:
    """The rule files named by `paths` (files, or folders of *.yaml / *.yml), sorted per folder.

    Raises FileValidationError for a path that does not exist.
    """
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir()
                              if p.suffix in (".yaml", ".yml") and p.is_file()))
        elif path.is_file():
            out.append(path)
        else:
            raise FileValidationError(str(path), None, "(file)", "no such rule file or folder")
    return out


def load_rule_set(paths: Iterable[str | Path], default_calling_window: str,
                  late_grace_days: int = DEFAULT_LATE_GRACE_DAYS) -> RuleSet:
    """Load every rule file under `paths` into one RuleSet. Rule ids must be unique.

    `default_calling_window` applies where neither the rule nor its file's defaults name one
    (the composition root passes `settings.hospital.calling_hours`).
    Raises FileValidationError (file, line, field) on the first problem.
    """
    try:
        parse_calling_window(default_calling_window)
    except CallingWindowError as exc:
        raise ConfigError("hospital.calling_hours", exc.message) from None
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for path in rule_files(paths):
        data, lines = load_yaml_with_lines(path)
        for rule in _parse_file(data, lines, default_calling_window, start=len(rules)):
            if rule.rule_id in seen:
                raise FileValidationError(str(path), int(rule.source.rsplit(":", 1)[1]), "id",
                                          f"rule id {rule.rule_id!r} already defined at "
                                          f"{seen[rule.rule_id]}")
            seen[rule.rule_id] = rule.source
            rules.append(rule)
    return RuleSet(tuple(rules), late_grace_days=late_grace_days)


def parse_rules_text(text: str, name: str, default_calling_window: str) -> RuleSet:
    """Parse one rule document held in memory (tests, the console's rule editor)."""
    data, lines = load_yaml_with_lines(name, text)
    return RuleSet(tuple(_parse_file(data, lines, default_calling_window, start=0)))


def _parse_file(data: Any, lines: LineMap, default_window: str, start: int) -> list[Rule]:
    top = _mapping(data, (), lines, _TOP_KEYS)
    if "rules" not in top:
        raise lines.error(("rules",), "missing: a rule file needs a 'rules:' list")
    defaults = _mapping(top.get("defaults", {}), ("defaults",), lines, _DEFAULT_KEYS)
    window = _window(defaults.get("calling_window", default_window), ("defaults", "calling_window"),
                     lines)
    priority = _int(defaults.get("priority", DEFAULT_PRIORITY), ("defaults", "priority"), lines,
                    1, 100)
    attempts = _int(defaults.get("max_attempts", DEFAULT_MAX_ATTEMPTS),
                    ("defaults", "max_attempts"), lines, 1, 10)
    raw_rules = top["rules"]
    if not isinstance(raw_rules, list) or not raw_rules:
        raise lines.error(("rules",), "must be a non-empty list of rules")
    return [_parse_rule(item, ("rules", i), lines, window, priority, attempts, start + i)
            for i, item in enumerate(raw_rules)]


def _parse_rule(item: Any, loc: Loc, lines: LineMap, window: CallingWindow, priority: int,
                attempts: int, order: int) -> Rule:
    raw = _mapping(item, loc, lines, _RULE_KEYS)
    for required in ("id", "match"):
        if required not in raw:
            raise lines.error((*loc, required), "missing (every rule needs id, match and "
                              "followups or reminders)")
    if "followups" not in raw and "reminders" not in raw:
        raise lines.error((*loc, "followups"), "missing (every rule needs id, match and "
                          "followups or reminders)")
    rule_id = _ident(raw["id"], (*loc, "id"), lines, "rule id")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise lines.error((*loc, "description"), "must be text")
    if "calling_window" in raw:
        window = _window(raw["calling_window"], (*loc, "calling_window"), lines)
    if "priority" in raw:
        priority = _int(raw["priority"], (*loc, "priority"), lines, 1, 100)
    if "max_attempts" in raw:
        attempts = _int(raw["max_attempts"], (*loc, "max_attempts"), lines, 1, 10)
    criteria = _criteria(raw["match"], (*loc, "match"), lines)
    raw_followups = raw.get("followups", [])
    if not isinstance(raw_followups, list) or ("followups" in raw and not raw_followups):
        raise lines.error((*loc, "followups"), "must be a non-empty list")
    followups: list[FollowupSpec] = []
    for j, fu in enumerate(raw_followups):
        spec = _followup(fu, (*loc, "followups", j), lines, priority, attempts)
        if any(f.offset_days == spec.offset_days for f in followups):
            raise lines.error((*loc, "followups", j, "offset"),
                              f"offset +{spec.offset_days}d appears twice in this rule")
        followups.append(spec)
    raw_reminders = raw.get("reminders", [])
    if not isinstance(raw_reminders, list) or ("reminders" in raw and not raw_reminders):
        raise lines.error((*loc, "reminders"), "must be a non-empty list")
    reminders: list[ReminderSpec] = []
    for j, item in enumerate(raw_reminders):
        reminder = _reminder(item, (*loc, "reminders", j), lines)
        if any((r.offset_days, r.template) == (reminder.offset_days, reminder.template)
               for r in reminders):
            raise lines.error((*loc, "reminders", j, "offset"),
                              f"{reminder.template} at +{reminder.offset_days}d appears twice")
        reminders.append(reminder)
    line = lines.line_of(loc) or 0
    return Rule(rule_id=rule_id, description=description, criteria=criteria,
                followups=tuple(followups), calling_window=window,
                source=f"{lines.path}:{line}", order=order, reminders=tuple(reminders))


def _criteria(item: Any, loc: Loc, lines: LineMap) -> Criteria:
    raw = _mapping(item if item is not None else {}, loc, lines, _MATCH_KEYS)
    types: list[EncounterType] = []
    for i, value in enumerate(_str_list(raw.get("encounter_types", []),
                                        (*loc, "encounter_types"), lines)):
        try:
            types.append(EncounterType(value.lower()))
        except ValueError:
            known = ", ".join(t.value for t in EncounterType)
            raise lines.error((*loc, "encounter_types", i),
                              f"unknown encounter type {value!r} (known: {known})") from None
    departments = _codes(raw.get("departments", []), (*loc, "departments"), lines, upper=True)
    icd = []
    for i, value in enumerate(_str_list(raw.get("icd10_prefixes", []),
                                        (*loc, "icd10_prefixes"), lines)):
        norm = normalise_icd10(value)
        if not _ICD10.match(norm):
            raise lines.error((*loc, "icd10_prefixes", i),
                              f"{value!r} is not an ICD-10 code prefix (e.g. I21, C50.9)")
        icd.append(norm)
    return Criteria(
        encounter_types=tuple(types),
        departments=departments,
        icd10_prefixes=tuple(icd),
        procedures=_codes(raw.get("procedures", []), (*loc, "procedures"), lines, upper=True),
        age_years=_range(raw.get("age"), (*loc, "age"), lines),
        length_of_stay_days=_range(raw.get("length_of_stay_days"),
                                   (*loc, "length_of_stay_days"), lines),
        dispositions=_codes(raw.get("dispositions", []), (*loc, "dispositions"), lines,
                            upper=False),
        exclude_dispositions=_codes(raw.get("exclude_dispositions", []),
                                    (*loc, "exclude_dispositions"), lines, upper=False),
    )


def normalise_icd10(code: str) -> str:
    """ICD-10 codes compare upper-case without the dot: 'i21.0' -> 'I210'."""
    return code.strip().upper().replace(".", "")


def _offset(value: Any, loc: Loc, lines: LineMap) -> int:
    m = _OFFSET.match(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise lines.error(loc, f"{value!r} is not an offset in days like +3d (0 to 999)")
    return int(m.group(1))


def _reminder(item: Any, loc: Loc, lines: LineMap) -> ReminderSpec:
    raw = _mapping(item, loc, lines, _REMINDER_KEYS)
    for required in ("offset", "message"):
        if required not in raw:
            raise lines.error((*loc, required), "missing (a reminder needs offset and message)")
    message = raw["message"]
    if message not in _REMINDERS:
        raise lines.error((*loc, "message"), f"{message!r} is not a reminder message (known: "
                          f"{', '.join(_REMINDERS)})")
    return ReminderSpec(offset_days=_offset(raw["offset"], (*loc, "offset"), lines),
                        template=message,
                        days=_int(raw.get("days", 1), (*loc, "days"), lines, 1, 90))


def _followup(item: Any, loc: Loc, lines: LineMap, priority: int, attempts: int) -> FollowupSpec:
    raw = _mapping(item, loc, lines, _FOLLOWUP_KEYS)
    for required in ("offset", "script"):
        if required not in raw:
            raise lines.error((*loc, required), "missing (a follow-up needs offset and script)")
    return FollowupSpec(
        offset_days=_offset(raw["offset"], (*loc, "offset"), lines),
        script_id=_ident(raw["script"], (*loc, "script"), lines, "script id"),
        priority=_int(raw.get("priority", priority), (*loc, "priority"), lines, 1, 100),
        max_attempts=_int(raw.get("max_attempts", attempts), (*loc, "max_attempts"), lines, 1,
                          10),
        source=f"{lines.path}:{lines.line_of((*loc, 'script')) or 0}",
    )


def check_scripts_exist(rules: RuleSet, known: Collection[str], scripts_dir: str) -> None:
    """Every script a rule names must exist (in some version) under the scripts folder.

    Raises FileValidationError at the rule file's `script:` line for the first unknown one.
    """
    for rule in rules.rules:
        for spec in rule.followups:
            if spec.script_id not in known:
                path, _, line = spec.source.rpartition(":")
                raise FileValidationError(path, int(line) if line.isdigit() else None,
                                          f"{rule.rule_id}.script",
                                          f"no script {spec.script_id!r} in {scripts_dir}")


def _mapping(item: Any, loc: Loc, lines: LineMap, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(item, dict):
        raise lines.error(loc, "must be a mapping of key: value")
    for key in item:
        if key not in allowed:
            raise lines.error((*loc, key),
                              f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")
    return item


def _window(value: Any, loc: Loc, lines: LineMap) -> CallingWindow:
    try:
        return parse_calling_window(value)
    except CallingWindowError as exc:
        raise lines.error(loc, f"bad calling window: {exc}") from None


def _int(value: Any, loc: Loc, lines: LineMap, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise lines.error(loc, f"must be a whole number from {low} to {high}, got {value!r}")
    return value


def _ident(value: Any, loc: Loc, lines: LineMap, what: str) -> str:
    if not isinstance(value, str) or not _IDENT.match(value):
        raise lines.error(loc, f"{what} must be lower-case letters, digits and - (got {value!r})")
    return value


def _str_list(value: Any, loc: Loc, lines: LineMap) -> Sequence[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise lines.error(loc, "must be a list")
    for i, item in enumerate(value):
        if not isinstance(item, str | int) or isinstance(item, bool):
            raise lines.error((*loc, i), f"must be text, got {item!r}")
    return [str(item) for item in value]


def _codes(value: Any, loc: Loc, lines: LineMap, upper: bool) -> tuple[str, ...]:
    out: list[str] = []
    for i, item in enumerate(_str_list(value, loc, lines)):
        if not _CODE.match(item):
            raise lines.error((*loc, i), f"{item!r} is not a code (letters, digits, - . _)")
        out.append(item.upper() if upper else item.lower())
    return tuple(out)


def _range(value: Any, loc: Loc, lines: LineMap) -> Range | None:
    if value is None:
        return None
    raw = _mapping(value, loc, lines, _RANGE_KEYS)
    bounds: dict[str, float | None] = {"min": None, "max": None}
    for key in ("min", "max"):
        if key in raw:
            v = raw[key]
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise lines.error((*loc, key), f"must be a number >= 0, got {v!r}")
            bounds[key] = float(v)
    low, high = bounds["min"], bounds["max"]
    if low is not None and high is not None and low > high:
        raise lines.error(loc, f"min {low:g} is greater than max {high:g}")
    return Range(low, high)
