"""The hospital's FHIR server over HTTP (httpx): PUT a resource, read the answer.

Why httpx: maintained, typed, timeouts on every phase, the same client for tests against a
local server. Only `Delivery` leaves this module: HTTP status and, on a refusal, the text of
the OperationOutcome the server sent (FHIR servers explain a 4xx there)."""

from __future__ import annotations

import httpx

from core.fhir_outcome import outcome_text
from fhir_r4.outbox import Delivery


class HttpFhirServer:
    def __init__(self, base_url: str, timeout_s: float = 10.0,
                 headers: dict[str, str] | None = None) -> None:
        self._client = httpx.Client(base_url=base_url.rstrip("/") + "/", timeout=timeout_s,
                                    headers={"Content-Type": "application/fhir+json",
                                             "Accept": "application/fhir+json",
                                             **(headers or {})})

    def put(self, resource_type: str, resource_id: str, body: str) -> Delivery:
        try:
            reply = self._client.put(f"{resource_type}/{resource_id}",
                                     content=body.encode("utf-8"))
        except httpx.HTTPError as exc:
            return Delivery(None, f"{type(exc).__name__}: {exc}"[:500])
        if reply.is_success:
            return Delivery(reply.status_code)
        return Delivery(reply.status_code, outcome_text(reply.text))

    def close(self) -> None:
        self._client.close()
