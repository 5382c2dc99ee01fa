"""Everything the interpreter knows about the call it is running, beyond the channel."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ivr.prompts import PromptContext
from ivr.results import Answer


@dataclass(frozen=True, slots=True)
class CallContext:
    """Facts for one call, built by the dialer from the store and the settings.

    `staffed_hours` is decided by the caller (time is an input): a red flag with action
    `transfer` only transfers when it is true. `earlier_answers` are the answers of earlier
    calls for the same task(s): a resumed run skips what they answered (and re-verifies
    identity). `channel_variables` ride along on every transfer (e.g. the attempt id).
    """

    prompt: PromptContext
    birth_year: int | None
    staffed_hours: bool = False
    nurse_queue: str = "followup-nurses"
    agent_queue: str = "followup-agents"
    earlier_answers: tuple[Answer, ...] = ()
    channel_variables: Mapping[str, str] = field(default_factory=dict)
    staff_language: str = "en-US"  # what the tickets this call raises are written in
