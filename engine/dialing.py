"""Build a campaign from the settings: claims, attempts, IVR, telephony, pacing.

The sim backend runs on an accelerated clock (the caller passes it); Asterisk runs on the
wall clock.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from core.clock import Clock
from core.errors import ConfigError
from dialer.attempt_log import AttemptLog
from dialer.call_handler import CallIvrResult, HandlerSettings, IvrCallHandler, ScriptLibrary
from dialer.campaign import Campaign, CampaignOptions, Sleep
from dialer.claims import CallingRules, SingleDialerLock, TaskClaimer
from dialer.pacing import Pacer
from dialer.retry_policy import RetryPolicy
from dialer.telephony import Telephony
from engine.app import App
from ivr.channel import Channel
from ivr.prompt_maker import PromptMaker
from ivr.script_loader import load_scripts
from ivr.script_model import Script
from ivr.speech import SpeechRecognizer, VoskRecognizer, resolve_model_dir
from ivr.tts import build_prompt_audio
from recordings.cipher import RecordingCipher
from recordings.store import RecordingStore

if TYPE_CHECKING:
    from dialer.asterisk.backend import AsteriskBackend

log = logging.getLogger(__name__)


def recording_store(app: App, clock: Clock | None = None) -> RecordingStore:
    key = app.settings.recordings.encryption_key.get_secret_value()
    return RecordingStore(app.settings.recordings_dir, clock or app.clock, app.audit,
                          RecordingCipher(key) if key else None)


def speech_recognizer(app: App) -> SpeechRecognizer | None:
    """Vosk with every configured model that is really there (missing ones are logged)."""
    usable: dict[str, str] = {}
    for locale, spec in app.settings.speech.models.items():
        try:
            resolve_model_dir(spec)
        except ConfigError as exc:
            log.warning("speech: no model for %s (%s); its voice answers are kept "
                        "untranscribed", locale, exc.problem)
            continue
        usable[locale] = spec
    if not usable:
        return None
    return VoskRecognizer(usable, workers=app.settings.speech.workers)


def load_script_library(app: App) -> tuple[ScriptLibrary, list[Script]]:
    scripts = load_scripts(Path(app.settings.scripts.dir))
    return ScriptLibrary(scripts, app.settings.hospital.default_language), scripts


class TelephonyFactory(Protocol):
    """Builds the backend once the IVR handler exists (the backend runs it on answer)."""

    def __call__(self, handler: IvrCallHandler, scripts: list[Script]) -> Telephony: ...


@dataclass
class DialerParts:
    campaign: Campaign
    claimer: TaskClaimer
    attempts: AttemptLog
    lock: SingleDialerLock | None
    recognizer: SpeechRecognizer | None

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()
        if isinstance(self.recognizer, VoskRecognizer):
            self.recognizer.close()


def build_handler(app: App, attempts: AttemptLog, clock: Clock,
                  recognizer: SpeechRecognizer | None) -> tuple[IvrCallHandler, list[Script]]:
    s = app.settings
    library, scripts = load_script_library(app)
    prompts = PromptMaker(build_prompt_audio(app.data_dir, s.tts.engine, s.tts.voice,
                                             s.tts.prompt_packs))
    handler = IvrCallHandler(
        app.db, attempts, library, prompts, recognizer,
        HandlerSettings(hospital=s.hospital.name, hospital_en=s.hospital.name_en,
                        emergency_number=s.hospital.emergency_number,
                        nurse_queue=s.asterisk.nurse_queue, agent_queue=s.asterisk.agent_queue,
                        nurse_hours=s.hospital.nurse_hours,
                        hospital_tz=s.hospital.default_timezone,
                        min_confidence=s.speech.min_confidence),
        clock)
    return handler, scripts


def build_dialer(app: App, clock: Clock, sleep: Sleep, telephony_factory: TelephonyFactory,
                 *, backend: str, owner: str | None = None) -> DialerParts:
    """Everything a dialer process needs. Takes the single-dialer lock on SQLite."""
    s = app.settings
    lock = None
    if app.db.dialect == "sqlite":
        lock = SingleDialerLock(Path(str(app.db.engine.url.database) + ".dialer.lock"))
        lock.acquire()
    owner = owner or f"{socket.gethostname()}:{os.getpid()}"
    rules = CallingRules.from_settings(s.hospital.calling_hours, s.dialer.holidays,
                                       s.dialer.max_calls_per_patient_per_day)
    claimer = TaskClaimer(app.db, owner, dt.timedelta(seconds=s.dialer.lease_seconds), rules,
                          s.hospital.default_timezone)
    attempts = AttemptLog(app.db, RetryPolicy(), recording_store(app, clock), backend)
    recognizer = speech_recognizer(app)
    handler, scripts = build_handler(app, attempts, clock, recognizer)
    telephony = telephony_factory(handler, scripts)
    pacer = Pacer(s.dialer.max_channels, s.dialer.calls_per_second, clock, sleep)
    campaign = Campaign(app.db, claimer, attempts, telephony, pacer, clock, sleep,
                        CampaignOptions(caller_id=s.asterisk.caller_id,
                                        ring_timeout_s=s.asterisk.originate_timeout_s))
    return DialerParts(campaign, claimer, attempts, lock, recognizer)




def sim_telephony_factory(app: App, clock: Clock, sleep: Sleep, seed: int,
                          work_dir: Path) -> TelephonyFactory:
    """The simulated backend: personas answer through the sim channel, whose real prompt
    audio and espeak-ng speech make the call recording."""
    from dialer.sim.telephony import SimTelephony
    from ivr.sim_channel import SimChannel, SimPatient
    from ivr.tts import EspeakTts

    work_dir.mkdir(parents=True, exist_ok=True)
    voice = EspeakTts()

    def channel(patient: SimPatient, name: str) -> SimChannel:
        return SimChannel(patient, work_dir, voice=voice, call_name=name)

    def make(handler: IvrCallHandler, scripts: list[Script]) -> Telephony:
        by_id = {sc.id: sc for sc in scripts if sc.locale == app.settings.hospital.
                 default_language}
        by_id.update({sc.id: sc for sc in scripts if sc.id not in by_id})
        return SimTelephony(app.db, handler, channel, by_id, clock, sleep, seed)

    return make


def asterisk_backend(app: App, clock: Clock, handler: IvrCallHandler) -> AsteriskBackend:
    """The Asterisk backend: AMI originates, FastAGI runs `handler` on answered calls.
    The caller starts it (`await backend.start()`) and closes it."""
    from dialer.asterisk.backend import AsteriskBackend

    async def ivr(attempt_id: str, channel: Channel) -> CallIvrResult:
        return await handler(int(attempt_id), channel)

    return AsteriskBackend.from_settings(app.settings.asterisk, clock, ivr)
