"""The simulated telephony backend: virtual patients and virtual staff instead of a carrier.

`place(plan, events)` draws the patient's persona for this attempt, publishes dialled (and
ringing) on the simulation's clock, lets the phone ring for the persona's ring time, and
either reports a network outcome (busy, no answer, unreachable, invalid number) or answers:
then the plan's IVR runs for real over a channel the `channel_factory` makes (the sim
channel writes the real prompt audio and the patient's speech into the call recording).

A call the IVR hands to a queue is taken by a simulated nurse or agent with probability
`staff_answer_rate` (seeded per attempt); otherwise nobody answers, the handler plays the
unanswered-handoff message on the same call, and the report carries no agent.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

from core.clock import Clock
from core.enums import CallProgress, DialOutcome, HangupCause
from dialer.agents import AgentListener, AgentState, AgentStatus
from dialer.call_handler import CallHandler
from dialer.call_plan import CallPlan, ProgressBus, ProgressEvent
from dialer.sim.personas import Behaviour, Persona, PersonaPatient, draw_persona
from dialer.telephony import AgentLeg, CallReport
from ivr.script_model import Script
from ivr.sim_channel import SimChannel

# Q.850 causes as Asterisk reports them for each network outcome.
HANGUP_CAUSE = {DialOutcome.ANSWERED: HangupCause.NORMAL_CLEARING,
                DialOutcome.BUSY: HangupCause.USER_BUSY,
                DialOutcome.NO_ANSWER: HangupCause.NO_ANSWER,
                DialOutcome.UNREACHABLE: HangupCause.NO_ANSWER,
                DialOutcome.INVALID_NUMBER: HangupCause.UNALLOCATED}
RING_BEFORE_RINGING_S = 1.0  # the network's set-up time before the phone rings

Sleep = Callable[[float], Awaitable[None]]
ChannelFactory = Callable[[PersonaPatient, str, int], SimChannel]


class SimTelephony:
    """A `dialer.telephony.Telephony` whose far ends are personas."""

    def __init__(self, handler: CallHandler, channel_factory: ChannelFactory,
                 scripts: dict[str, Script], clock: Clock, sleep: Sleep, seed: int,
                 rates: dict[Behaviour, float] | None = None,
                 staff_answer_rate: float = 0.8) -> None:
        self._handler = handler
        self._channel_factory = channel_factory
        self._scripts = scripts
        self._clock = clock
        self._sleep = sleep
        self._seed = seed
        self._rates = rates
        self._staff_answer_rate = staff_answer_rate
        self._agents: AgentListener | None = None
        self._talking: dict[str, int] = {}  # simulated staff member -> calls taken now

    def watch_agents(self, listener: AgentListener) -> None:
        """Report the simulated staff's states: talking while they hold a call."""
        self._agents = listener

    def _staff(self, queue: str, member: str, delta: int) -> None:
        calls = self._talking[member] = self._talking.get(member, 0) + delta
        if self._agents is not None:
            self._agents(AgentStatus(queue, member, AgentState.TALKING if calls else
                                     AgentState.AVAILABLE, self._clock.now()))

    def persona_for(self, plan: CallPlan) -> Persona:
        """The persona on this attempt (deterministic for the seed, the patient and the
        number of attempts the task has had)."""
        return draw_persona(self._seed, plan.task.patient_id, plan.task.attempts + 1,
                            plan.context.birth_year, plan.task.language, self._rates)

    def _publish(self, events: ProgressBus, plan: CallPlan, progress: CallProgress,
                 channel: str, queue: str | None = None, agent: str | None = None) -> None:
        events.publish(ProgressEvent(plan.attempt_id, progress, self._clock.now(),
                                     channel=channel, uniqueid=f"sim-{plan.attempt_id}",
                                     queue=queue, agent=agent))

    async def place(self, plan: CallPlan, events: ProgressBus) -> CallReport:
        persona = self.persona_for(plan)
        outcome = persona.dial_outcome
        channel_name = f"SIM/{plan.phone}-{plan.attempt_id:08x}"
        uniqueid = f"sim-{plan.attempt_id}"
        self._publish(events, plan, CallProgress.DIALLED, channel_name)
        ring = min(persona.ring_s, float(plan.ring_timeout_s))
        rings = outcome in (DialOutcome.ANSWERED, DialOutcome.NO_ANSWER)
        if rings and ring > RING_BEFORE_RINGING_S:
            await self._sleep(RING_BEFORE_RINGING_S)
            self._publish(events, plan, CallProgress.RINGING, channel_name)
            ring -= RING_BEFORE_RINGING_S
        await self._sleep(ring)
        if outcome is not DialOutcome.ANSWERED:
            return CallReport(attempt_id=plan.attempt_id, outcome=outcome, dialled=True,
                              hangup_cause=HANGUP_CAUSE.get(outcome), channel=channel_name,
                              uniqueid=uniqueid, ended_at=self._clock.now())
        answered = self._clock.now()
        self._publish(events, plan, CallProgress.ANSWERED, channel_name)
        patient = PersonaPatient(persona, self._scripts)
        sim = self._channel_factory(patient, f"call-{plan.attempt_id}", plan.attempt_id)
        agent: AgentLeg | None = None
        try:
            plan.amd = persona.amd_verdict
            result = await self._handler.run(plan, sim)
            if result is not None and result.transferred_to is not None:
                agent = await self._handoff(plan, events, sim, result.transferred_to,
                                            channel_name)
        finally:
            path = await sim.close()
        # a channel that does not wait on the clock keeps a virtual timeline only: hold
        # the line for the rest of the call's length
        await self._sleep(max(0, sim.now_ms - sim.elapsed_waited_ms) / 1000.0)
        return CallReport(attempt_id=plan.attempt_id, outcome=DialOutcome.ANSWERED,
                          dialled=True, hangup_cause=HangupCause.NORMAL_CLEARING,
                          channel=channel_name, uniqueid=uniqueid, answered_at=answered,
                          ended_at=self._clock.now(), recording=path,
                          queue=result.transferred_to if result else None, agent=agent)

    async def _handoff(self, plan: CallPlan, events: ProgressBus, sim: SimChannel,
                       queue: str, channel_name: str) -> AgentLeg | None:
        """The queue: a simulated person takes the call, or nobody does."""
        self._publish(events, plan, CallProgress.IN_QUEUE, channel_name, queue=queue)
        rng = random.Random(f"{self._seed}:handoff:{plan.attempt_id}")
        if rng.random() < self._staff_answer_rate:
            hold = rng.randint(2, 20)
            await self._sleep(hold)
            member = f"Sim staff {rng.randint(1, 9)}"
            self._publish(events, plan, CallProgress.CONNECTED, channel_name, queue=queue,
                          agent=member)
            talk = rng.randint(60, 300)
            self._staff(queue, member, +1)
            try:
                await self._sleep(talk)
            finally:
                self._staff(queue, member, -1)
            return AgentLeg(queue=queue, interface="SIM/staff", member_name=member,
                            hold_time_s=hold, talk_time_s=talk, ended_by="agent")
        await self._sleep(30)  # the queue rings out
        await self._handler.handoff_unanswered(plan, sim)
        return None
