"""Build a campaign from the settings: claims, attempts, IVR, telephony, pacing.

The sim backend runs on an accelerated clock (the caller passes it); Asterisk runs on the
wall clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from core.calling_window import CallingRules
from core.clock import Clock
from core.errors import ConfigError
from core.settings import BackendName
from dialer.agents import AgentSource
from dialer.attempt_log import AttemptLog
from dialer.call_handler import IvrCallHandler
from dialer.call_planner import CallPlanner, PlannerSettings, ScriptLibrary
from dialer.campaign import Campaign, CampaignOptions, Sleep
from dialer.claims import SingleDialerLock, TaskClaimer
from dialer.live_board import LiveBoard
from dialer.pacing import Pacer
from dialer.retry_policy import RetryPolicy
from dialer.spool_sweep import sweep_spool
from dialer.telephony import Telephony
from engine.app import App
from ivr.prompt_maker import PromptMaker
from ivr.script_loader import load_scripts
from ivr.script_model import Script
from ivr.speech import SpeechRecognizer, VoskRecognizer, resolve_model_dir
from ivr.tts import build_prompt_audio
from recordings.cipher import RecordingCipher
from recordings.health import folder_problem
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
    board: LiveBoard  # the calls in progress, for the wallboard's live feed

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()
        if isinstance(self.recognizer, VoskRecognizer):
            self.recognizer.close()


def build_handler(app: App, attempts: AttemptLog, clock: Clock,
                  recognizer: SpeechRecognizer | None
                  ) -> tuple[IvrCallHandler, CallPlanner, list[Script]]:
    """The IVR handler and the call planner that feeds it, over the loaded scripts."""
    s = app.settings
    library, scripts = load_script_library(app)
    prompts = PromptMaker(build_prompt_audio(app.data_dir, s.tts.engine, s.tts.voice,
                                             s.tts.prompt_packs))
    handler = IvrCallHandler(app.db, attempts, prompts, recognizer, clock,
                             s.speech.min_confidence)
    planner = CallPlanner(app.db, attempts, library, prompts, PlannerSettings(
        hospital=s.hospital.name, hospital_en=s.hospital.name_en,
        hospital_language=s.hospital.default_language,
        emergency_number=s.hospital.emergency_number, nurse_queue=s.asterisk.nurse_queue,
        agent_queue=s.asterisk.agent_queue, nurse_hours=s.hospital.nurse_hours,
        hospital_tz=s.hospital.default_timezone, caller_id=s.asterisk.caller_id,
        caller_name=s.hospital.name_en, ring_timeout_s=s.asterisk.originate_timeout_s,
        callback_number=s.hospital.callback_number))
    return handler, planner, scripts


def build_dialer(app: App, clock: Clock, sleep: Sleep, telephony_factory: TelephonyFactory,
                 *, backend: BackendName, owner: str | None = None) -> DialerParts:
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
    recordings = recording_store(app, clock)
    attempts = AttemptLog(app.db, RetryPolicy(staff_language=s.hospital.default_language),
                          recordings, backend, s.tickets.response_times())
    recognizer = speech_recognizer(app)
    handler, planner, scripts = build_handler(app, attempts, clock, recognizer)
    telephony = telephony_factory(handler, scripts)
    pacer = Pacer(s.dialer.max_channels, s.dialer.calls_per_second, clock, sleep)
    min_free = s.dialer.min_free_recording_mb * 1024 * 1024
    checks = [lambda: folder_problem(recordings.root, min_free)]
    if backend == "asterisk":
        checks.append(lambda: folder_problem(Path(s.asterisk.clip_dir), min_free))
    lease = float(s.dialer.lease_seconds)
    campaign = Campaign(app.db, claimer, attempts, planner, telephony, pacer, clock, sleep,
                        # renewed five times per lease; taken back only once a whole
                        # further lease has passed without a renewal (a busy dialer's
                        # late renewal must never lose it a live call)
                        CampaignOptions(lease_renew_s=lease / 5, reclaim_interval_s=lease / 5,
                                        reclaim_grace_s=lease,
                                        max_consecutive_failures=(
                                            s.dialer.max_consecutive_failures),
                                        staff_language=s.hospital.default_language),
                        health_checks=tuple(checks),
                        spool_sweep=functools.partial(sweep_spool, app.db, attempts, recordings))
    board = LiveBoard(clock, lambda: (pacer.in_use, pacer.max_channels))
    campaign.events.subscribe(board)
    if isinstance(telephony, AgentSource):
        telephony.watch_agents(board.agent)
    return DialerParts(campaign, claimer, attempts, lock, recognizer, board)


def sim_telephony_factory(app: App, clock: Clock, sleep: Sleep, seed: int,
                          work_dir: Path, truth: Path | None = None) -> TelephonyFactory:
    """The simulated backend: personas answer at a person's pace (on `clock`) through the
    sim channel, whose real prompt audio and espeak-ng speech make the call recording;
    what each simulated patient did is appended to the truth log (`truth`, by default
    `work_dir/truth.jsonl`) so tests can compare the store with it."""
    from dialer.sim.telephony import SimTelephony
    from dialer.sim.truth_log import TruthLog
    from ivr.sim_channel import SimChannel, SimPatient
    from ivr.tts import EspeakTts

    work_dir.mkdir(parents=True, exist_ok=True)
    voice = EspeakTts()
    log_file = TruthLog(truth or work_dir / "truth.jsonl", clock)

    def channel(patient: SimPatient, name: str, attempt_id: int) -> SimChannel:
        return SimChannel(patient, work_dir, voice=voice, call_name=name, sleep=sleep,
                          truth=log_file, attempt_id=attempt_id)

    def make(handler: IvrCallHandler, scripts: list[Script]) -> Telephony:
        by_id = {sc.id: sc for sc in scripts if sc.locale == app.settings.hospital.
                 default_language}
        by_id.update({sc.id: sc for sc in scripts if sc.id not in by_id})
        return SimTelephony(handler, channel, by_id, clock, sleep, seed)

    return make


def asterisk_backend(app: App, clock: Clock, handler: IvrCallHandler) -> AsteriskBackend:
    """The Asterisk backend: AMI originates, FastAGI runs `handler` on answered calls.
    The caller starts it (`await backend.start()`) and closes it."""
    from dialer.asterisk.backend import AsteriskBackend

    s = app.settings
    return AsteriskBackend.from_settings(s.asterisk, clock, handler,
                                         max_channels=s.dialer.max_channels,
                                         calls_per_second=s.dialer.calls_per_second)


def live_feed_service(app: App, parts: DialerParts) -> Callable[[asyncio.Event], Awaitable[str]]:
    """The wallboard's live feed of this dialer, announced in the store under the dialer's
    lease name (heartbeats on the wall clock, whatever clock a simulation runs on)."""
    from core.live_feeds import announce, withdraw
    from dialer.live_feed import LiveFeed

    owner = parts.claimer.owner

    def _announce(url: str) -> None:
        with app.db.session() as s:
            announce(s, owner, url, app.clock.now())

    def _withdraw() -> None:
        with app.db.session() as s:
            withdraw(s, owner)

    feed = LiveFeed(parts.board, host=app.settings.dialer.live_feed_host,
                    port=app.settings.dialer.live_feed_port)

    async def run(stop: asyncio.Event) -> str:
        return await feed.run(stop, lambda url: app.db.call(_announce, url),
                              lambda: app.db.call(_withdraw))

    return run
