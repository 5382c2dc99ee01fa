"""Trunks: which carrier a number leaves through, at what pace, and when to try the next.

A `Trunk` is a carrier trunk or SIP gateway with its own channel and calls-per-second caps
(each a `Pacer`), caller id, dial template and number prefixes. `TrunkLines.candidates`
orders the trunks that may carry a number: the longest matching prefix first, then the
configured order; a trunk without prefixes takes any number after the specific ones.
`TrunkLines.line` holds a channel on the first candidate with one free (waiting on the
first candidate when all are full), so a full preferred trunk overflows to the next.

A trunk fault (`is_trunk_fault`: congestion, or a call the trunk failed before any channel
existed) is the carrier's, not the patient's: the caller tries the next candidate, and
when every candidate faulted the attempt is `failed` (retried soon, not counted).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from core.clock import Clock
from core.domain import is_dialable
from core.enums import CallProgress, DialOutcome
from dialer.call_plan import ProgressBus, ProgressEvent
from dialer.pacing import Pacer, Sleep
from dialer.telephony import CallReport


@dataclass(frozen=True, slots=True)
class Trunk:
    """One way out: a name (the PJSIP endpoint), its dial template and the numbers it takes."""

    name: str
    dial_template: str = "PJSIP/{number}@{trunk}"
    caller_id: str = ""  # empty: the hospital's (the plan's)
    prefixes: tuple[str, ...] = ()
    max_channels: int = 30
    calls_per_second: float = 5.0

    @property
    def number_is_endpoint(self) -> bool:
        """Dialling `PJSIP/{number}` (no trunk): the number names an endpoint."""
        return "@" not in self.dial_template and "{trunk}" not in self.dial_template

    def dial_string(self, phone: str) -> str:
        if not is_dialable(phone):
            raise ValueError(f"not a dialable number: {phone!r}")
        return self.dial_template.format(number=phone, trunk=self.name)

    def match(self, phone: str) -> int | None:
        """How specifically this trunk takes `phone`: the length of its longest matching
        prefix, 0 for a trunk that takes any number, None when it does not take it."""
        if not self.prefixes:
            return 0
        lengths = [len(p) for p in self.prefixes if phone.startswith(p)]
        return max(lengths) if lengths else None


def is_trunk_fault(report: CallReport) -> bool:
    """The carrier failed the call, not the patient's line: congestion, or a failure
    before any channel existed (the trunk unreachable). Worth the next trunk."""
    if not report.outcome_certain:
        return False
    return report.outcome is DialOutcome.CONGESTION or (
        report.outcome is DialOutcome.FAILED and not report.dialled)


class TrunkLines:
    """The trunks with a pacer each; see the module docstring."""

    def __init__(self, trunks: Sequence[Trunk], clock: Clock, sleep: Sleep) -> None:
        if not trunks:
            raise ValueError("at least one trunk")
        self.trunks = tuple(trunks)
        self.pacers = {t.name: Pacer(t.max_channels, t.calls_per_second, clock, sleep)
                       for t in self.trunks}

    def candidates(self, phone: str) -> list[Trunk]:
        """The trunks that may carry `phone`, best first (empty: none takes it)."""
        scored = [(m, i, t) for i, t in enumerate(self.trunks)
                  if (m := t.match(phone)) is not None]
        return [t for _, _, t in sorted(scored, key=lambda x: (-x[0], x[1]))]

    @asynccontextmanager
    async def line(self, candidates: Sequence[Trunk]) -> AsyncIterator[Trunk]:
        """A channel on the first candidate with one free, else on the first candidate
        once it frees one; held (with the trunk's call-rate spacing) for the block."""
        chosen = next((t for t in candidates if self.pacers[t.name].has_free_channel),
                      candidates[0])
        async with self.pacers[chosen.name].slot():
            yield chosen


class ProgressHold:
    """One try's progress (publish it on `bus`), passed on to `events` once the network
    took the call. `dialled` is held back until the call goes further (ringing, answered)
    or `release()`: a trunk that refuses the call did not dial the patient, so the try
    must not count as the patient's attempt. Not released: the held events are dropped."""

    def __init__(self, events: ProgressBus) -> None:
        self._events = events
        self._held: list[ProgressEvent] = []
        self._open = False
        self.bus = ProgressBus()
        self.bus.subscribe(self._on)

    def _on(self, event: ProgressEvent) -> None:
        if not self._open and event.progress is CallProgress.DIALLED:
            self._held.append(event)
            return
        self.release()
        self._events.publish(event)

    def release(self) -> None:
        """Pass on what was held, and everything from now on."""
        self._open = True
        held, self._held = self._held, []
        for event in held:
            self._events.publish(event)
