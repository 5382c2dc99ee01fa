"""What the engine itself writes on the tickets it raises, in the language of the staff who
read the worklist (the hospital's `default_language`, whatever language the patient was
called in). Red-flag summaries come from the scripts, written for the same readers."""

from __future__ import annotations

from enum import StrEnum


class TicketText(StrEnum):
    IDENTITY_NO_BIRTH_YEAR = "identity_no_birth_year"
    IDENTITY_FAILED = "identity_failed"  # {tries}
    ASKED_FOR_PERSON = "asked_for_person"
    NOBODY_ANSWERED = "nobody_answered"  # {summary} {queue}
    PERSON_NOBODY_ANSWERED = "person_nobody_answered"  # {queue}
    LAST_ATTEMPT = "last_attempt"  # {outcome} {attempts}
    INVALID_NUMBER = "invalid_number"
    CALLING_PAUSED = "calling_paused"  # {minutes} {why}


_TEXTS: dict[TicketText, tuple[str, str]] = {
    TicketText.IDENTITY_NO_BIRTH_YEAR: ("身份未核实：档案中没有出生年份",
                                        "identity not verified: birth year unknown"),
    TicketText.IDENTITY_FAILED: ("身份未核实：{tries} 次均未答对出生年份",
                                 "identity not verified after {tries} tries"),
    TicketText.ASKED_FOR_PERSON: ("患者按 0 要求人工，当时没有坐席接听",
                                  "asked for a person (key 0); no agent took the call"),
    TicketText.NOBODY_ANSWERED: ("{summary}（转接 {queue} 无人接听）",
                                 "{summary} (nobody in {queue} answered)"),
    TicketText.PERSON_NOBODY_ANSWERED: ("患者要求人工，转接 {queue} 无人接听",
                                        "asked for a person; nobody in {queue} answered"),
    TicketText.LAST_ATTEMPT: ("已拨打 {attempts} 次，最后一次仍{outcome}",
                              "{outcome} after the last of {attempts} attempts"),
    TicketText.INVALID_NUMBER: ("号码无效", "invalid number"),
    TicketText.CALLING_PAUSED: ("外呼已暂停 {minutes} 分钟：{why}",
                                "calling paused {minutes} min: {why}"),
}

# how a call that did not get through ended, for LAST_ATTEMPT (a RetryKey's value)
_OUTCOMES: dict[str, tuple[str, str]] = {
    "busy": ("占线", "busy"), "no_answer": ("无人接听", "no answer"),
    "unreachable": ("无法接通", "unreachable"), "congestion": ("线路拥塞", "congestion"),
    "failed": ("呼叫失败", "failed"), "error": ("系统错误", "error"),
    "partial": ("中途挂断", "hung up part way"), "unknown": ("结果不明", "outcome unknown"),
    "machine": ("答录机/语音信箱", "answering machine"),
}


def _pick(language: str) -> int:
    return 0 if language.lower().startswith("zh") else 1


def ticket_text(language: str, key: TicketText, **values: object) -> str:
    """The text in `language` ("zh-CN": Chinese, anything else: English), at most 500
    characters (the ticket's summary column)."""
    return _TEXTS[key][_pick(language)].format(**values)[:500]


def outcome_words(language: str, retry_key: str) -> str:
    """A retry key (`busy`, `no_answer`, ...) as the staff read it."""
    pair = _OUTCOMES.get(retry_key)
    return pair[_pick(language)] if pair else retry_key
