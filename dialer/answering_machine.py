"""Answering-machine detection (AMD): the verdict as a typed value, and what it decides.

On Asterisk, `AMD()` runs in the dialplan after the answer (the call recording already
running) and before the IVR; the dialplan hands `AMDSTATUS` and `AMDCAUSE` to the FastAGI
session, where `AmdVerdict.parse` reads them. The simulator gives its machines and people
verdicts of the same shape.

What the engine does with a verdict (`AmdVerdict.is_machine`):
- MACHINE: nothing is said; the line is dropped, the attempt ends `machine` (an attempt
  that counts) and the task is retried later, at another time of day.
- MACHINE because of INITIALSILENCE is taken for a person: someone who picks up and waits
  for the caller to speak is silent too, while a voicemail greeting speaks. False machine
  verdicts lose real people (regulators count them as abandoned calls); a machine taken for
  a person hears the hospital's name and the consent question only, because nothing
  private plays before a key press and the identity check (`ivr.interpreter`).
- NOTSURE, HUMAN: a person. HANGUP: the callee left during detection; the IVR finds the
  line gone and the attempt ends as any hang-up does.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.enums import AmdStatus

MAX_CAUSE_CHARS = 64
_SILENCE_CAUSE = "INITIALSILENCE"


@dataclass(frozen=True, slots=True)
class AmdVerdict:
    """Asterisk's `AMDSTATUS` and `AMDCAUSE` (e.g. `LONGGREETING-2000-1500`)."""

    status: AmdStatus
    cause: str = ""

    @classmethod
    def parse(cls, status: str | None, cause: str | None) -> AmdVerdict | None:
        """The verdict from the dialplan's values; None when detection did not run (AMD
        off, or an older dialplan) or the status is not one Asterisk gives."""
        raw = (status or "").strip().upper()
        try:
            verdict = AmdStatus(raw)
        except ValueError:
            return None
        text = "".join(c for c in (cause or "") if c.isalnum() or c in "-_")
        return cls(verdict, text[:MAX_CAUSE_CHARS])

    @property
    def is_machine(self) -> bool:
        """True when the call must end without a word (see the module doc)."""
        return self.status is AmdStatus.MACHINE and not self.cause.startswith(_SILENCE_CAUSE)
