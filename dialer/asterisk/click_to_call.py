"""Click-to-call for a ticket, on Asterisk: the agent's phone rings first, and once the
agent answers the dialplan (`[followup-callback]`) dials the patient and records the call.

One adapter, on one long-lived AMI connection (opened on first use in the caller's event
loop, kept for the process's life): no AMI login per click. The console records the
request before calling `call()` and the result after it, so no network call ever runs
inside a database transaction.
"""

from __future__ import annotations

import asyncio
import re

from core.errors import TelephonyError
from dialer.asterisk.ami import AmiClient, AmiConfig
from dialer.trunks import Trunk

CALLBACK_CONTEXT = "followup-callback"
_EXTENSION = re.compile(r"^[0-9A-Za-z_-]{1,32}$")


class AsteriskClickToCall:
    """Rings configured agent and nurse extensions only. `call()` raises TelephonyError
    (unknown extension, AMI refused) and TelephonyUnavailable (AMI unreachable)."""

    def __init__(self, ami: AmiConfig, extensions: frozenset[str], caller_id: str = "",
                 ring_timeout_s: int = 30, trunk: Trunk | None = None) -> None:
        self._ami = ami
        self._extensions = extensions
        self._caller_id = caller_id
        self._ring_timeout_s = ring_timeout_s
        self._trunk = trunk or Trunk("carrier")
        self._client: AmiClient | None = None
        self._lock = asyncio.Lock()

    async def _connected(self) -> AmiClient:
        async with self._lock:
            if self._client is None:
                client = AmiClient(self._ami, on_event=lambda _event: None)
                await client.start()  # raises TelephonyUnavailable / AmiAuthError
                self._client = client
            return self._client

    async def call(self, *, agent_extension: str, patient_phone: str, ticket_id: int) -> str:
        if agent_extension not in self._extensions or not _EXTENSION.fullmatch(
                agent_extension):
            raise TelephonyError(f"extension {agent_extension} is not a configured agent phone")
        try:
            self._trunk.dial_string(patient_phone)
        except ValueError as exc:
            raise TelephonyError(f"not a dialable number: {patient_phone!r}") from exc
        client = await self._connected()
        headers = [("Channel", f"PJSIP/{agent_extension}"), ("Context", CALLBACK_CONTEXT),
                   ("Exten", patient_phone), ("Priority", "1"), ("Async", "true"),
                   ("Timeout", str(self._ring_timeout_s * 1000)),
                   ("Variable", f"FOLLOWUP_TICKET={ticket_id}")]
        if self._caller_id:
            headers.append(("CallerID", self._caller_id))
        await client.send_action("Originate", *headers,
                                 action_id=client.next_action_id("callback"))
        return (f"your phone {agent_extension} is ringing; the patient is dialled when you "
                "answer")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
