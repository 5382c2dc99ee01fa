"""Simulated patients: who answers, who is busy, who hangs up, who reports chest pain.

A persona is drawn per (patient, attempt) from rates that follow what follow-up call
centres report (about two in three calls answered; busy and no answer are the usual
failures; a few wrong or dead numbers). The draw is seeded, so a simulation replays.

In the call, a persona answers like a person: it types its birth year for the identity
check (a wrong person types another year), answers yes/no, scales and numbers, speaks its
voice answers, and — depending on its behaviour — hangs up midway, presses 0 for a person,
presses 9 to opt out, or gives the answer that raises a red flag. A machine persona is a
voicemail: answering-machine detection calls it a machine (`Persona.amd_verdict`) and the
engine hangs up on it without a word. It finds the question
from the prompt's key (`<script>/q.<question>`) in the script library.

Its pace is a person's too: each answer comes after its own think time, drawn around the
persona's `think_s`. A persona that hangs up does so after `hang_up_after` answers, at a
moment of its own: during a question or a message (part of the prompt heard), or after
the prompt while it would be answering. All of it is drawn from the persona's seed, so a
call replays.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from enum import StrEnum

from core.enums import AmdStatus, DialOutcome, QuestionKind
from dialer.answering_machine import AmdVerdict
from ivr.script_model import Question, Script
from ivr.sim_channel import SimReply, SimTurn, TurnKind


class Behaviour(StrEnum):
    COOPERATIVE = "cooperative"
    SPEAKS = "speaks"  # answers voice questions at length, keypad otherwise
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    UNREACHABLE = "unreachable"
    INVALID_NUMBER = "invalid_number"
    WRONG_PERSON = "wrong_person"  # someone else answers: identity fails
    HANGS_UP = "hangs_up"
    ASKS_FOR_PERSON = "asks_for_person"
    OPTS_OUT = "opts_out"
    RED_FLAG = "red_flag"
    SILENT = "silent"  # answers the phone and never presses anything
    MACHINE = "machine"  # a voicemail greeting answers: nobody is there


DEFAULT_RATES: dict[Behaviour, float] = {
    Behaviour.COOPERATIVE: 0.42,
    Behaviour.SPEAKS: 0.08,
    Behaviour.BUSY: 0.08,
    Behaviour.NO_ANSWER: 0.12,
    Behaviour.UNREACHABLE: 0.04,
    Behaviour.INVALID_NUMBER: 0.01,
    Behaviour.WRONG_PERSON: 0.02,
    Behaviour.HANGS_UP: 0.07,
    Behaviour.ASKS_FOR_PERSON: 0.04,
    Behaviour.OPTS_OUT: 0.02,
    Behaviour.RED_FLAG: 0.05,
    Behaviour.SILENT: 0.02,
    Behaviour.MACHINE: 0.03,
}

NETWORK_OUTCOME: dict[Behaviour, DialOutcome] = {
    Behaviour.BUSY: DialOutcome.BUSY,
    Behaviour.NO_ANSWER: DialOutcome.NO_ANSWER,
    Behaviour.UNREACHABLE: DialOutcome.UNREACHABLE,
    Behaviour.INVALID_NUMBER: DialOutcome.INVALID_NUMBER,
}

# Think times: log-normal around the persona's think_s (1-4 s), within these bounds.
THINK_SPREAD = 0.35
MIN_THINK_S = 0.4
MAX_THINK_S = 10.0
# HANGS_UP: the share of hang-ups at an input that come during the question (the rest
# after it, while the patient would answer), and the chance that a message or greeting
# played once the patience has run out is where it hangs up.
MID_PROMPT_HANG_UPS = 0.5
PLAY_HANG_UPS = 0.35

VOICE_ANSWERS = {
    "zh-CN": "护士态度很好，就是停车不太方便",
    "en-US": "the nurses were kind but parking was hard",
    "ko-KR": "간호사가 친절했습니다",
}


@dataclass(frozen=True, slots=True)
class Persona:
    behaviour: Behaviour
    birth_year: int | None
    language: str
    ring_s: float  # how long the phone rings before the outcome
    think_s: float  # typical pause before an answer (each answer draws its own around it)
    hang_up_after: int  # HANGS_UP: inputs answered before hanging up
    seed: int

    @property
    def dial_outcome(self) -> DialOutcome:
        return NETWORK_OUTCOME.get(self.behaviour, DialOutcome.ANSWERED)

    @property
    def amd_verdict(self) -> AmdVerdict:
        """What Asterisk's AMD would say of this answer: a machine's long greeting; a
        silent person's silence (INITIALSILENCE: still taken for a person); a person's
        short hello."""
        if self.behaviour is Behaviour.MACHINE:
            return AmdVerdict(AmdStatus.MACHINE, "LONGGREETING-1800-1500")
        if self.behaviour is Behaviour.SILENT:
            return AmdVerdict(AmdStatus.MACHINE, "INITIALSILENCE-2500-2500")
        return AmdVerdict(AmdStatus.HUMAN, "HUMAN-1-800")


def draw_persona(seed: int, patient_id: int, attempt: int, birth_year: int | None,
                 language: str, rates: dict[Behaviour, float] | None = None) -> Persona:
    """The persona for this patient on this attempt (deterministic for the seed)."""
    rng = random.Random(f"{seed}:{patient_id}:{attempt}")
    table = rates or DEFAULT_RATES
    behaviours = list(table)
    behaviour = rng.choices(behaviours, weights=[table[b] for b in behaviours])[0]
    ring = rng.uniform(3, 12) if behaviour is not Behaviour.NO_ANSWER else 30.0
    if behaviour in (Behaviour.UNREACHABLE, Behaviour.INVALID_NUMBER):
        ring = rng.uniform(1, 4)
    return Persona(behaviour=behaviour, birth_year=birth_year, language=language,
                   ring_s=ring, think_s=rng.uniform(1.0, 4.0),
                   hang_up_after=rng.randint(1, 3), seed=rng.randrange(1 << 30))


class PersonaPatient:
    """Answers a call's prompts as the persona would (one instance per call); a
    `ivr.sim_channel.SimPatient`."""

    def __init__(self, persona: Persona, scripts: dict[str, Script]) -> None:
        self.persona = persona
        self._scripts = scripts
        self._rng = random.Random(persona.seed)  # what it answers
        # When it answers and hangs up: a stream of its own, so the answers drawn for a
        # seed do not depend on how many pauses were drawn before them.
        self._pace = random.Random(f"{persona.seed}:pace")
        self.inputs = 0
        self.think_times_ms: list[int] = []
        self.hung_up_during: str | None = None  # the prompt key it hung up on

    def think_ms(self) -> int:
        """A pause before one answer: log-normal around the persona's `think_s`."""
        seconds = self._pace.lognormvariate(math.log(self.persona.think_s), THINK_SPREAD)
        ms = int(min(max(seconds, MIN_THINK_S), MAX_THINK_S) * 1000)
        self.think_times_ms.append(ms)
        return ms

    def _hang_up(self, turn: SimTurn) -> SimReply:
        """Hang up on this turn: mid-prompt or, at an input, after a pause."""
        self.hung_up_during = turn.prompt_key
        if self._pace.random() < MID_PROMPT_HANG_UPS or turn.kind is TurnKind.PLAY:
            return SimReply(hang_up=True, think_ms=0,
                            prompt_heard=self._pace.uniform(0.05, 0.95))
        return SimReply(hang_up=True, think_ms=self.think_ms(), prompt_heard=1.0)

    def _hangs_up_now(self, turn: SimTurn) -> bool:
        p = self.persona
        if p.behaviour is not Behaviour.HANGS_UP or self.hung_up_during is not None:
            return False
        if turn.kind is TurnKind.PLAY:
            # a message or the closing may be where patience runs out
            return self.inputs >= p.hang_up_after and self._pace.random() < PLAY_HANG_UPS
        return self.inputs > p.hang_up_after

    @property
    def language(self) -> str:
        return self.persona.language

    def respond(self, turn: SimTurn) -> SimReply:
        """The patient's reply to what it hears: keys, words, silence or a hangup."""
        p = self.persona
        if turn.kind is TurnKind.PLAY:
            if self._hangs_up_now(turn):
                return self._hang_up(turn)
            return SimReply(think_ms=0)  # listens to the prompt to the end
        self.inputs += 1
        if self._hangs_up_now(turn):
            return self._hang_up(turn)
        think = self.think_ms()
        script_id, _, part = turn.prompt_key.partition("/")
        if p.behaviour is Behaviour.SILENT:
            return SimReply(think_ms=think)
        if part.startswith("identity."):
            year = p.birth_year or 1900
            if p.behaviour is Behaviour.WRONG_PERSON:
                year += 7
            return SimReply(keys=f"{year:04d}#", think_ms=think)
        if part in ("consent.prompt", "msg.optout_confirm"):
            return SimReply(keys="1", think_ms=think)
        question = self._question(script_id, part[2:]) if part.startswith("q.") else None
        if question is None:
            return SimReply(think_ms=think)
        if p.behaviour is Behaviour.ASKS_FOR_PERSON:
            return SimReply(keys="0", think_ms=think)
        if p.behaviour is Behaviour.OPTS_OUT:
            return SimReply(keys="9", think_ms=think)
        if question.kind is QuestionKind.VOICE:
            if turn.kind is TurnKind.RECORD:
                return SimReply(say=VOICE_ANSWERS.get(p.language, VOICE_ANSWERS["en-US"]),
                                think_ms=think)
            return SimReply(keys="#", think_ms=think)
        return SimReply(keys=self._keys(self._scripts[script_id], question), think_ms=think)

    def _question(self, script_id: str, qid: str) -> Question | None:
        script = self._scripts.get(script_id)
        if script is None:
            return None
        return next((q for q in script.questions if q.id == qid), None)

    def _keys(self, script: Script, q: Question) -> str:
        candidates = self._candidates(q)
        flagged = [c for c in candidates if self._raises_flag(script, q, c)]
        calm = [c for c in candidates if c not in flagged]
        if self.persona.behaviour is Behaviour.RED_FLAG:
            pool = flagged or calm
        else:
            pool = calm or candidates
        keys, _ = self._rng.choice(pool)
        return keys

    @staticmethod
    def _candidates(q: Question) -> list[tuple[str, object]]:
        if q.kind is QuestionKind.YES_NO:
            return [("1", True), ("2", False)]
        if q.kind is QuestionKind.CHOICE:
            return [(o.key, o.value) for o in q.options]
        if q.kind in (QuestionKind.SCALE, QuestionKind.NUMBER):
            lo, hi = q.min or 0, q.max if q.max is not None else 9
            step = max(1, (hi - lo) // 8)
            term = "" if q.single_key else "#"
            return [(f"{v}{term}", v) for v in range(lo, hi + 1, step)]
        return [("1", True)]

    @staticmethod
    def _raises_flag(script: Script, q: Question, candidate: tuple[str, object]) -> bool:
        """Would this answer raise one of the question's red flags? (Earlier answers are
        taken as unknown, as the interpreter sees unanswered questions.)"""
        _, value = candidate
        values: dict[str, object] = {other.id: None for other in script.questions}
        values[q.id] = value
        values["value"] = value
        return any(flag.condition.holds(values) for flag in q.red_flags)
