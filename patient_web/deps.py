"""What the questionnaire app is built from (by `engine.commands.patient_web`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from ivr.script_library import ScriptLibrary
from patient_web.questionnaire import Questionnaire


@dataclass
class PatientWebDeps:
    """`key`: the links' secret key (it signs the tokens, the CSRF proofs and the
    verification cookie). `hospital`/`hospital_en`: the name pages show (open facts)."""

    questionnaire: Questionnaire
    library: ScriptLibrary
    key: bytes
    hospital: str
    hospital_en: str
    requests_per_minute: int = 30
    secure_cookies: bool = False  # served over https: the cookie is then Secure
    rate_clock: Callable[[], float] = field(default=time.monotonic)

    def hospital_name(self, language: str) -> str:
        return self.hospital if language.startswith("zh") else self.hospital_en


def deps_of(request: Request) -> PatientWebDeps:
    deps: PatientWebDeps = request.app.state.deps
    return deps
