"""What a red-flag answer triggers."""

from __future__ import annotations

from enum import StrEnum


class RedFlagAction(StrEnum):
    TRANSFER = "transfer"  # live transfer to the nurse queue in staffed hours, else ticket
    TICKET = "ticket"  # a ticket for a nurse plus the safety message
