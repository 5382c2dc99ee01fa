"""What the console app is built from; the composition root fills it in."""

from __future__ import annotations

from dataclasses import dataclass, field

from console.definitions import DefinitionSource
from console.questions import QuestionCatalog
from console.worklist import ClickToCall
from core.audit import AuditLog
from core.calling_window import CallingRules
from core.clock import Clock
from core.store.db import Database
from core.tickets import DEFAULT_RESPONSE_TIMES, ResponseTimes
from recordings.store import RecordingStore


@dataclass(frozen=True)
class ConsoleDeps:
    db: Database
    clock: Clock
    audit: AuditLog
    recordings: RecordingStore
    secret_key: str
    timezone: str = "Asia/Shanghai"
    phone_region: str = "CN"  # how a number typed without a country code is read
    hospital_name: str = ""
    hospital_name_en: str = ""  # what English messages and pages call the hospital
    max_failed_logins: int = 5
    session_hours: int = 8
    https_only: bool = False
    definitions: DefinitionSource | None = None
    questions: QuestionCatalog | None = None
    click_to_call: ClickToCall | None = None
    # the hospital's calling hours and holidays (a callback a person schedules lies inside)
    calling_rules: CallingRules = field(
        default_factory=lambda: CallingRules.from_settings("09:00-20:00", []))
    response_times: ResponseTimes = DEFAULT_RESPONSE_TIMES  # each reason's SLA
