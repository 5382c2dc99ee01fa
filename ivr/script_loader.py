"""Load and validate a question script file into an `ivr.script_model.Script`.

The file format (one file per script, version and locale, `scripts/<id>/v<N>/<locale>.yaml`):

```yaml
id: cardiology-post-discharge      # header, see ivr.catalog
version: 1
locale: zh-CN
title: 心内科出院随访
valid_from: 2026-01-01             # optional, inclusive
valid_until: 2026-12-31            # optional, inclusive
retries: 2                         # re-prompts after a timeout / invalid key (default 2)
timeout_s: 6                       # keypad silence before a re-prompt (default 6)
on_machine: hang_up                # or leave_message: the locale's `voicemail` message
                                   #   to patients who agreed to messages (default hang_up)
greeting: "您好，{{ patient.name }}{{ patient.title }}……"   # after identity is verified
identity:                          # required; omit keys to use the locale default
  tries: 2
  prompt: "..."                    # also retry:, failed:
consent:                           # optional: "is now a good time? 1 yes 2 no" (else the
  prompt: "..."                    #   locale's consent_prompt / consent_declined messages)
  declined: "..."
questions:
  - id: chest_pain                 # [a-z][a-z0-9_]*, unique
    kind: yes_no                   # yes_no | choice | scale | number | voice | message
    text: "出院后是否有胸痛？有请按1，没有请按2。"
    when: "sbp is not none and sbp > 140"   # optional, over EARLIER answers
    voice: true                    # closed questions: also accept speech (default: yes_no)
    red_flag:                      # one mapping or a list
      - when: "value"              # `value` is this answer
        severity: high             # low | medium | high | critical
        action: transfer           # transfer | ticket
        summary: "chest pain after discharge"
        message: "如果胸痛加重，请立即拨打{{ emergency_number }}。"   # optional
  - {id: mood, kind: choice, text: "...",
     options: [{key: "1", value: good, words: [좋음], label: 좋음}]}   # label: for reports
  - {id: pain, kind: scale, text: "...", min: 0, max: 10}
  - {id: sbp, kind: number, text: "...", min: 60, max: 260}
  - {id: comment, kind: voice, text: "...", max_seconds: 30}
  - {id: tip, kind: message, text: "..."}
satisfaction_index: [overall, recommend]   # optional: the report's 0-100 index items
closing: "感谢您的配合，再见。"
messages: {invalid: "..."}         # optional overrides of ivr.messages.DEFAULT_MESSAGES
```

Every problem is a `core.errors.FileValidationError` naming the file, the line and the
field: unknown keys, unknown question kinds, a Jinja2 template that does not compile, a
template naming a variable it may not use (the patient, the department or the visit in a
prompt that plays before identity is verified: the consent, the identity check, the
messages), `identity: false` (the check is what every private prompt waits for), a
`when:` or `red_flag:` condition that does not compile or names an unknown or later
question. Keys 0, 9, * and # are reserved (operator, opt-out, repeat, end) and cannot be
choice keys.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

from core.enums import QuestionKind, Severity
from core.errors import FileValidationError
from core.yamlfile import LineMap, load_yaml_with_lines
from ivr.catalog import parse_header
from ivr.messages import DEFAULT_MESSAGES, MESSAGE_KEYS
from ivr.prompts import new_environment
from ivr.red_flag_action import RedFlagAction
from ivr.script_model import (
    OPEN_VARIABLES,
    VERIFIED_VARIABLES,
    Condition,
    Consent,
    IdentityCheck,
    MachineAction,
    Option,
    Question,
    RedFlag,
    Script,
    Template,
)

Loc = tuple[str | int, ...]

_TOP_KEYS = {"id", "version", "locale", "title", "valid_from", "valid_until", "retries",
             "timeout_s", "greeting", "identity", "consent", "questions", "closing",
             "messages", "satisfaction_index", "on_machine"}
_QUESTION_KEYS = {"id", "kind", "text", "when", "voice", "options", "min", "max",
                  "max_digits", "max_seconds", "red_flag"}
_QUESTION_ID = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
_RESERVED_NAMES = VERIFIED_VARIABLES | {"value", "true", "false", "none", "loop"}
_RESERVED_KEYS = {"0", "9", "*", "#"}


class _Builder:
    def __init__(self, path: str, lines: LineMap, env: SandboxedEnvironment) -> None:
        self.path = path
        self.lines = lines
        self.env = env

    def error(self, loc: Loc, problem: str) -> FileValidationError:
        return self.lines.error(loc, problem)

    def mapping(self, value: Any, loc: Loc, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(loc, "must be a mapping")
        for key in value:
            if key not in allowed:
                raise self.error((*loc, key),
                                 f"unknown key (allowed: {', '.join(sorted(allowed))})")
        return value

    def text(self, data: dict[str, Any], key: str, loc: Loc) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self.error((*loc, key), "must be non-empty text")
        return value

    def integer(self, data: dict[str, Any], key: str, loc: Loc, default: int | None,
                low: int | None = None, high: int | None = None) -> int | None:
        value = data.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error((*loc, key), "must be an integer")
        if (low is not None and value < low) or (high is not None and value > high):
            raise self.error((*loc, key), f"must be between {low} and {high}")
        return value

    def number(self, data: dict[str, Any], key: str, loc: Loc, default: float,
               low: float, high: float) -> float:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error((*loc, key), "must be a number")
        if not low <= value <= high:
            raise self.error((*loc, key), f"must be between {low} and {high}")
        return float(value)

    def template(self, source: Any, loc: Loc, allowed: frozenset[str]) -> Template:
        if not isinstance(source, str) or not source.strip():
            raise self.error(loc, "must be non-empty text")
        line = self.lines.line_of(loc)
        try:
            parsed = self.env.parse(source)
            compiled = self.env.from_string(source)
        except TemplateSyntaxError as exc:
            raise self.error(loc, f"broken template: {exc.message}") from None
        names = frozenset(meta.find_undeclared_variables(parsed))
        unknown = names - allowed
        if unknown:
            extra = (" (the patient, the department and the visit are private: not in a "
                     "prompt that plays before identity is verified)"
                     if unknown & VERIFIED_VARIABLES else "")
            raise self.error(loc, f"unknown template variable {', '.join(sorted(unknown))}"
                                  f"{extra}; allowed: {', '.join(sorted(allowed))}")
        return Template(source, compiled, names, line)

    def condition(self, source: Any, loc: Loc, earlier: list[str], later: set[str],
                  extra: frozenset[str] = frozenset(), self_id: str = "") -> Condition:
        if isinstance(source, bool) or not isinstance(source, str) or not source.strip():
            raise self.error(loc, "must be a condition (a Jinja2 expression) as text")
        try:
            compiled = self.env.compile_expression(source, undefined_to_none=True)
            parsed = self.env.parse("{{ (" + source + ") }}")
        except TemplateSyntaxError as exc:
            raise self.error(loc, f"broken condition: {exc.message}") from None
        names = frozenset(meta.find_undeclared_variables(parsed))
        for name in sorted(names - set(earlier) - extra):
            if name in later:
                raise self.error(loc, f"refers to question {name!r}, which is asked "
                                      f"{'here' if name == self_id else 'later'}")
            raise self.error(loc, f"refers to unknown question {name!r}")
        return Condition(source, compiled, names, self.lines.line_of(loc))


def load_script(path: str | Path, text: str | None = None) -> Script:
    """Load, validate and compile one script file. Raises FileValidationError."""
    path = Path(path)
    data, lines = load_yaml_with_lines(path, text)
    header = parse_header(path, data, lines)
    b = _Builder(str(path), lines, new_environment())
    b.mapping(data, (), _TOP_KEYS)
    public = OPEN_VARIABLES
    verified = VERIFIED_VARIABLES
    locale_defaults = DEFAULT_MESSAGES.get(header.locale, DEFAULT_MESSAGES["en-US"])

    messages_raw = data.get("messages", {}) or {}
    b.mapping(messages_raw, ("messages",), set(MESSAGE_KEYS))
    messages: dict[str, Template] = {}
    for key in MESSAGE_KEYS:
        if key in messages_raw:
            messages[key] = b.template(messages_raw[key], ("messages", key), public)
        else:
            messages[key] = b.template(locale_defaults[key], ("messages",), public)

    if data.get("identity") is False:
        raise b.error(("identity",), "cannot be turned off: the patient's name, department "
                                     "and every question wait for the identity check")
    raw = data.get("identity") if data.get("identity") not in (None, True) else {}
    b.mapping(raw, ("identity",), {"prompt", "retry", "failed", "tries"})
    parts = {part: (b.template(raw[part], ("identity", part), public) if part in raw
                    else messages[f"identity_{part}"]) for part in ("prompt", "retry", "failed")}
    tries = b.integer(raw, "tries", ("identity",), 2, 1, 5)
    assert tries is not None
    identity = IdentityCheck(parts["prompt"], parts["retry"], parts["failed"], tries)

    if data.get("consent") is not None:
        raw = b.mapping(data["consent"], ("consent",), {"prompt", "declined"})
        consent = Consent(b.template(raw.get("prompt"), ("consent", "prompt"), public),
                          b.template(raw.get("declined"), ("consent", "declined"), public))
    else:
        consent = Consent(messages["consent_prompt"], messages["consent_declined"])

    questions_raw = data.get("questions")
    if not isinstance(questions_raw, list) or not questions_raw:
        raise b.error(("questions",), "must be a non-empty list")
    all_ids: list[str] = []
    for q in questions_raw:
        if isinstance(q, dict) and isinstance(q.get("id"), str):
            all_ids.append(q["id"])
    questions: list[Question] = []
    earlier: list[str] = []
    for i, raw_q in enumerate(questions_raw):
        q = _question(b, raw_q, ("questions", i), earlier, set(all_ids) - set(earlier),
                      verified, header.locale)
        questions.append(q)
        earlier.append(q.id)

    return Script(
        id=header.script_id, version=header.version, locale=header.locale,
        title=header.title, path=str(path),
        satisfaction_index=_satisfaction_index(b, data.get("satisfaction_index"), questions),
        greeting=b.template(data.get("greeting"), ("greeting",), verified),
        closing=b.template(data.get("closing"), ("closing",), verified),
        questions=tuple(questions), messages=messages, identity=identity, consent=consent,
        retries=b.integer(data, "retries", (), 2, 0, 5) or 0,
        timeout_s=b.number(data, "timeout_s", (), 6.0, 1.0, 60.0),
        on_machine=_machine_action(b, data.get("on_machine", MachineAction.HANG_UP.value)),
    )


def _machine_action(b: _Builder, raw: Any) -> MachineAction:
    try:
        return MachineAction(str(raw))
    except ValueError:
        raise b.error(("on_machine",), f"must be one of "
                      f"{', '.join(a.value for a in MachineAction)} (got {raw!r})") from None


def _question(b: _Builder, raw: Any, loc: Loc, earlier: list[str], later: set[str],
              allowed: frozenset[str], locale: str) -> Question:
    data = b.mapping(raw, loc, _QUESTION_KEYS)
    qid = data.get("id")
    if not isinstance(qid, str) or not _QUESTION_ID.match(qid) or qid in _RESERVED_NAMES:
        raise b.error((*loc, "id"), "must be a name like chest_pain (lower case, not a "
                                    "reserved word)")
    if qid in earlier:
        raise b.error((*loc, "id"), f"duplicate question id {qid!r}")
    kind_raw = data.get("kind")
    try:
        kind = QuestionKind(str(kind_raw))
    except ValueError:
        raise b.error((*loc, "kind"), f"unknown question kind {kind_raw!r} (known: "
                                      f"{', '.join(k.value for k in QuestionKind)})") from None
    text = b.template(data.get("text"), (*loc, "text"), allowed)
    when = (b.condition(data["when"], (*loc, "when"), earlier, later, self_id=qid)
            if "when" in data else None)

    options: tuple[Option, ...] = ()
    low: int | None = None
    high: int | None = None
    max_digits = 1
    if kind is QuestionKind.CHOICE:
        opts = data.get("options")
        if not isinstance(opts, list) or len(opts) < 2:
            raise b.error((*loc, "options"), "a choice needs at least two options")
        seen: set[str] = set()
        built = []
        for j, o in enumerate(opts):
            oloc = (*loc, "options", j)
            od = b.mapping(o, oloc, {"key", "value", "words", "label"})
            key = str(od.get("key", ""))
            if len(key) != 1 or not key.isdigit() or key in _RESERVED_KEYS:
                raise b.error((*oloc, "key"), "must be one key 1-8 (0 and 9 are reserved)")
            if key in seen:
                raise b.error((*oloc, "key"), f"key {key} used twice")
            seen.add(key)
            value = od.get("value")
            if not isinstance(value, str) or not value:
                raise b.error((*oloc, "value"), "must be text")
            words = od.get("words", [])
            if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
                raise b.error((*oloc, "words"), "must be a list of words")
            label = od.get("label", "")
            if not isinstance(label, str) or len(label) > 64:
                raise b.error((*oloc, "label"), "must be text of at most 64 characters")
            built.append(Option(key, value, tuple(words), label.strip()))
        options = tuple(built)
    elif kind in (QuestionKind.SCALE, QuestionKind.NUMBER):
        low = b.integer(data, "min", loc, 1 if kind is QuestionKind.SCALE else None, 0)
        high = b.integer(data, "max", loc, 5 if kind is QuestionKind.SCALE else None, 0)
        if low is None or high is None:
            raise b.error((*loc, "min" if low is None else "max"), "is required")
        if high <= low:
            raise b.error((*loc, "max"), "must be greater than min")
        if kind is QuestionKind.SCALE and high > 10:
            raise b.error((*loc, "max"), "a scale goes up to 10 at most")
        if kind is QuestionKind.SCALE and high <= 9 and (low == 0 or high == 9):
            raise b.error((*loc, "min"), "a single-key scale cannot use 0 or 9 (reserved)")
        needed = len(str(high))
        max_digits = b.integer(data, "max_digits", loc, needed, needed, 6) or needed
        if kind is QuestionKind.SCALE:
            max_digits = needed
    for key in ("options",):
        if key in data and kind is not QuestionKind.CHOICE:
            raise b.error((*loc, key), f"only for choice questions, not {kind.value}")
    for key in ("min", "max", "max_digits"):
        if key in data and kind not in (QuestionKind.SCALE, QuestionKind.NUMBER):
            raise b.error((*loc, key), f"only for scale and number questions, not {kind.value}")
    if "max_seconds" in data and kind is not QuestionKind.VOICE:
        raise b.error((*loc, "max_seconds"), "only for voice questions")
    voice_default = kind is QuestionKind.YES_NO
    voice = data.get("voice", voice_default)
    if not isinstance(voice, bool):
        raise b.error((*loc, "voice"), "must be true or false")
    if voice and kind in (QuestionKind.NUMBER, QuestionKind.SCALE, QuestionKind.MESSAGE):
        # Spoken digits are not reliable with the small models (measured 3-6 of 9-10).
        raise b.error((*loc, "voice"), f"{kind.value} questions are keypad only")
    if voice and kind is QuestionKind.CHOICE and not all(o.words for o in options):
        raise b.error((*loc, "voice"), "every option needs words: to accept speech")
    max_seconds = (b.number(data, "max_seconds", loc, 30.0, 2.0, 300.0)
                   if kind is QuestionKind.VOICE else 30.0)

    flags: list[RedFlag] = []
    raw_flags = data.get("red_flag")
    if raw_flags is not None:
        if kind is QuestionKind.MESSAGE:
            raise b.error((*loc, "red_flag"), "a message has no answer to flag")
        items = raw_flags if isinstance(raw_flags, list) else [raw_flags]
        for j, rf in enumerate(items):
            floc = (*loc, "red_flag", j) if isinstance(raw_flags, list) else (*loc, "red_flag")
            fd = b.mapping(rf, floc, {"when", "severity", "action", "summary", "message"})
            cond = b.condition(fd.get("when"), (*floc, "when"), [*earlier, qid], later - {qid},
                               frozenset({"value"}), self_id=qid)
            try:
                severity = Severity(str(fd.get("severity")))
            except ValueError:
                raise b.error((*floc, "severity"), "must be low, medium, high or "
                                                   "critical") from None
            try:
                action = RedFlagAction(fd.get("action", "ticket"))
            except ValueError:
                raise b.error((*floc, "action"), "must be transfer or ticket") from None
            summary = fd.get("summary", f"red flag on {qid}")
            if not isinstance(summary, str) or "\n" in summary.strip():
                raise b.error((*floc, "summary"), "must be one line of text")
            message = (b.template(fd["message"], (*floc, "message"), allowed)
                       if "message" in fd else None)
            flags.append(RedFlag(cond, severity, action, summary.strip()[:200], message))
    return Question(id=qid, kind=kind, text=text, line=b.lines.line_of(loc), when=when,
                    options=options, min=low, max=high, max_digits=max_digits, voice=voice,
                    max_seconds=max_seconds, red_flags=tuple(flags))


def _satisfaction_index(b: _Builder, raw: object, questions: list[Question]
                        ) -> tuple[str, ...]:
    """The questions the template's satisfaction index averages (scale and yes/no items,
    each normalised to 0-100 by the report); empty when the script defines none."""
    if raw is None:
        return ()
    loc = ("satisfaction_index",)
    if not isinstance(raw, list) or not raw or not all(isinstance(x, str) for x in raw):
        raise b.error(loc, "must be a list of question ids")
    kinds = {q.id: q.kind for q in questions}
    for i, qid in enumerate(raw):
        if qid not in kinds:
            raise b.error((*loc, i), f"no question {qid!r} in this script")
        if kinds[qid] not in (QuestionKind.SCALE, QuestionKind.YES_NO):
            raise b.error((*loc, i), f"{qid!r} is not a scale or yes/no question")
    if len(set(raw)) != len(raw):
        raise b.error(loc, "names a question twice")
    return tuple(raw)


def load_scripts(scripts_dir: Path) -> list[Script]:
    """Load every script file under `scripts_dir` (see `ivr.catalog.script_files`)."""
    from ivr.catalog import script_files

    return [load_script(p) for p in script_files(scripts_dir)]
