"""Hangup causes, originate reasons and the one function that maps them to a `DialOutcome`.

Behaviour of Asterisk 22.10.1 with chan_pjsip, as recorded (tests/fixtures/asterisk/ami):

| case              | OriginateResponse      | DialEnd      | Hangup cause | channel |
| ----------------- | ---------------------- | ------------ | ------------ | ------- |
| answered          | Success, Reason 4      | ANSWER       | 0 or 16      | yes     |
| busy (486)        | Failure, **Reason 0**  | BUSY         | 17           | yes     |
| no answer         | Failure, Reason 3      | none         | 19           | rang    |
| unreachable       | Failure, Reason 3      | none         | 19           | never rang |
| unknown endpoint  | Failure, Reason 0, Uniqueid `<unknown>` | none | none  | **no**  |

(Through a trunk the same "no channel" answer means the trunk itself failed: see
`map_dial_outcome(number_is_endpoint=False)`.)

No answer and unreachable differ only in whether the channel ever reached the Ringing state
(`Newstate` ChannelState 5 / `DialState` RINGING / `Hangup` in state 5): a phone that rang
and was not picked up versus a contact nobody answered at the SIP level (timeout without a
180). That is the only signal in the data; a carrier that sends 180 for a switched-off phone
will look like no answer.
"""

from __future__ import annotations

import enum

from core.enums import DialOutcome, HangupCause


class OriginateReason(enum.IntEnum):
    """`Reason:` of an `OriginateResponse` (Asterisk's AST_CONTROL_* of the outbound leg)."""

    FAILURE = 0  # also busy with chan_pjsip, and an unknown endpoint
    HANGUP = 1
    RINGING = 3  # rang (or timed out) without an answer
    ANSWERED = 4
    BUSY = 5  # chan_sip era; chan_pjsip busy is Reason 0
    CONGESTION = 8

    @classmethod
    def parse(cls, raw: str | None) -> OriginateReason | None:
        if raw is None or not raw.isascii() or not raw.strip().isdigit():
            return None
        try:
            return cls(int(raw))
        except ValueError:
            return None


class DialStatus(enum.StrEnum):
    """`DialStatus:` of `DialState`/`DialEnd` (app_dial's DIALSTATUS values)."""

    RINGING = "RINGING"
    PROCEEDING = "PROCEEDING"
    PROGRESS = "PROGRESS"
    ANSWER = "ANSWER"
    BUSY = "BUSY"
    NOANSWER = "NOANSWER"
    CANCEL = "CANCEL"
    CONGESTION = "CONGESTION"
    CHANUNAVAIL = "CHANUNAVAIL"
    DONTCALL = "DONTCALL"
    TORTURE = "TORTURE"
    INVALIDARGS = "INVALIDARGS"

    @classmethod
    def parse(cls, raw: str | None) -> DialStatus | None:
        """The status a header names, or None when absent or not one Asterisk sends."""
        try:
            return cls(raw.strip()) if raw is not None else None
        except ValueError:
            return None


class ChannelState(enum.IntEnum):
    """`ChannelState:` of channel events (Asterisk's ast_channel_state)."""

    DOWN = 0
    RESERVED = 1
    OFFHOOK = 2
    DIALING = 3
    RING = 4
    RINGING = 5
    UP = 6
    BUSY = 7
    DIALING_OFFHOOK = 8
    PRERING = 9

    @classmethod
    def parse(cls, raw: str | None) -> ChannelState | None:
        if raw is None or not raw.strip().isascii() or not raw.strip().isdigit():
            return None
        try:
            return cls(int(raw))
        except ValueError:
            return None


_CAUSE_OUTCOME: dict[HangupCause, DialOutcome] = {
    HangupCause.USER_BUSY: DialOutcome.BUSY,
    HangupCause.NORMAL_CIRCUIT_CONGESTION: DialOutcome.CONGESTION,
    HangupCause.NETWORK_OUT_OF_ORDER: DialOutcome.CONGESTION,
    HangupCause.SWITCH_CONGESTION: DialOutcome.CONGESTION,
    HangupCause.NORMAL_TEMPORARY_FAILURE: DialOutcome.CONGESTION,
    HangupCause.UNALLOCATED: DialOutcome.INVALID_NUMBER,
    HangupCause.NO_ROUTE_DESTINATION: DialOutcome.INVALID_NUMBER,
    HangupCause.INVALID_NUMBER_FORMAT: DialOutcome.INVALID_NUMBER,
    HangupCause.NUMBER_CHANGED: DialOutcome.INVALID_NUMBER,
    HangupCause.SUBSCRIBER_ABSENT: DialOutcome.UNREACHABLE,
    HangupCause.DESTINATION_OUT_OF_ORDER: DialOutcome.UNREACHABLE,
}

_DIAL_STATUS_OUTCOME: dict[DialStatus, DialOutcome] = {
    DialStatus.ANSWER: DialOutcome.ANSWERED,
    DialStatus.BUSY: DialOutcome.BUSY,
    DialStatus.CONGESTION: DialOutcome.CONGESTION,
    DialStatus.CHANUNAVAIL: DialOutcome.UNREACHABLE,
}


def outcome_for_cause(cause: HangupCause | None) -> DialOutcome | None:
    """What a hangup cause alone says about the dial (None: it says nothing decisive)."""
    if cause is None:
        return None
    return _CAUSE_OUTCOME.get(cause)


def map_dial_outcome(*, originate_success: bool | None, reason: OriginateReason | None,
                     dial_status: DialStatus | None, cause: HangupCause | None,
                     channel_created: bool, ringing: bool,
                     number_is_endpoint: bool = True) -> DialOutcome:
    """The one mapping from what Asterisk said to how the dial ended (see the module table).

    `originate_success`/`reason` come from `OriginateResponse` (None if it never arrived),
    `dial_status` from `DialEnd` of the patient leg, `cause` from its `Hangup`,
    `channel_created` whether a channel for the attempt ever existed, `ringing` whether it
    reached the Ringing state. `number_is_endpoint`: the dial string names the patient as
    a PJSIP endpoint (`PJSIP/{number}`, as in the lab recordings), so a channel that could
    not be created means no such number; through a trunk (`PJSIP/{number}@carrier`) it
    means our trunk failed (seen on Asterisk 22: "Could not create dialog ... Is endpoint
    registered and reachable?"), which is `failed`, never the patient's number.
    """
    if originate_success or reason is OriginateReason.ANSWERED or dial_status is DialStatus.ANSWER:
        return DialOutcome.ANSWERED
    if dial_status is DialStatus.BUSY or cause is HangupCause.USER_BUSY \
            or reason is OriginateReason.BUSY:
        return DialOutcome.BUSY
    if reason is OriginateReason.CONGESTION or dial_status is DialStatus.CONGESTION:
        return DialOutcome.CONGESTION
    by_cause = outcome_for_cause(cause)
    if by_cause is not None:
        return by_cause
    if not channel_created:
        # Reason 0, Uniqueid <unknown>, no channel: the endpoint does not exist
        if reason is OriginateReason.FAILURE and number_is_endpoint:
            return DialOutcome.INVALID_NUMBER
        return DialOutcome.FAILED
    if (reason is OriginateReason.RINGING or dial_status is DialStatus.NOANSWER
            or cause in (HangupCause.NO_ANSWER, HangupCause.NO_USER_RESPONSE)):
        return DialOutcome.NO_ANSWER if ringing else DialOutcome.UNREACHABLE
    if dial_status in _DIAL_STATUS_OUTCOME:
        return _DIAL_STATUS_OUTCOME[dial_status]
    return DialOutcome.FAILED
