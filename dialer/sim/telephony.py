"""The simulated telephony backend: virtual patients instead of a carrier.

`place()` draws the patient's persona for this attempt, lets the phone ring for the
persona's ring time (on the simulation's clock), and either reports a network outcome
(busy, no answer, unreachable, invalid number) or answers: then the call's IVR runs for
real over a channel the `channel_factory` makes (the sim channel writes the real prompt
audio and the patient's speech into the call recording).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import select

from core.clock import Clock
from core.enums import DialOutcome
from core.store.db import Database
from core.store.models import CallAttempt, Patient
from dialer.call_handler import CallIvrResult
from dialer.sim.personas import Behaviour, Persona, PersonaPatient, draw_persona
from dialer.telephony import CallReport, CallRequest
from ivr.channel import Channel
from ivr.script_model import Script
from ivr.sim_channel import SimChannel

# Q.850 causes as Asterisk reports them for each network outcome.
HANGUP_CAUSE = {DialOutcome.ANSWERED: 16, DialOutcome.BUSY: 17, DialOutcome.NO_ANSWER: 19,
                DialOutcome.UNREACHABLE: 19, DialOutcome.INVALID_NUMBER: 1}

Sleep = Callable[[float], Awaitable[None]]
Handler = Callable[[int, Channel], Awaitable[CallIvrResult]]


ChannelFactory = Callable[[PersonaPatient, str], SimChannel]


@dataclass(frozen=True)
class PatientFacts:
    patient_id: int
    attempt_number: int
    birth_year: int | None
    language: str


class SimTelephony:
    """A `dialer.telephony.Telephony` whose far ends are personas."""

    def __init__(self, db: Database, handler: Handler, channel_factory: ChannelFactory,
                 scripts: dict[str, Script], clock: Clock, sleep: Sleep, seed: int,
                 rates: dict[Behaviour, float] | None = None) -> None:
        self._db = db
        self._handler = handler
        self._channel_factory = channel_factory
        self._scripts = scripts
        self._clock = clock
        self._sleep = sleep
        self._seed = seed
        self._rates = rates
        self.placed = 0

    def _facts(self, attempt_id: int) -> PatientFacts:
        with self._db.session() as s:
            row = s.execute(select(CallAttempt.patient_id, CallAttempt.number,
                                   Patient.birth_date, Patient.language)
                            .join(Patient, Patient.id == CallAttempt.patient_id)
                            .where(CallAttempt.id == attempt_id)).one()
        return PatientFacts(int(row[0]), int(row[1]), row[2].year if row[2] else None,
                            str(row[3]))

    def persona_for(self, attempt_id: int) -> Persona:
        f = self._facts(attempt_id)
        return draw_persona(self._seed, f.patient_id, f.attempt_number, f.birth_year,
                            f.language, self._rates)

    async def place(self, call: CallRequest) -> CallReport:
        attempt_id = int(call.attempt_id)
        self.placed += 1
        persona = await self._db.call(self.persona_for, attempt_id)
        outcome = persona.dial_outcome
        ring = min(persona.ring_s, float(call.timeout_s))
        await self._sleep(ring)
        channel_name = f"SIM/{call.phone}-{attempt_id:08x}"
        if outcome is not DialOutcome.ANSWERED:
            return CallReport(attempt_id=call.attempt_id, outcome=outcome,
                              dialled=outcome.was_dialled,
                              hangup_cause=HANGUP_CAUSE.get(outcome), channel=channel_name,
                              uniqueid=f"sim-{attempt_id}", ended_at=self._clock.now())
        answered = self._clock.now()
        patient = PersonaPatient(persona, self._scripts)
        sim = self._channel_factory(patient, f"call-{attempt_id}")
        try:
            result = await self._handler(attempt_id, sim)
        finally:
            path = await sim.close()
        # the sim channel keeps a virtual timeline: hold the channel for the call's length
        await self._sleep(sim.now_ms / 1000.0)
        return CallReport(attempt_id=call.attempt_id, outcome=DialOutcome.ANSWERED,
                          dialled=True, hangup_cause=16, channel=channel_name,
                          uniqueid=f"sim-{attempt_id}", answered_at=answered,
                          ended_at=self._clock.now(), ivr=result, recording=path,
                          queue=result.transferred_to)


