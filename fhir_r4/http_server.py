"""The hospital's FHIR server over HTTP (httpx): PUT a resource, read the answer.

Why httpx: maintained, typed, timeouts on every phase, the same client for tests against a
local server. Only `Delivery` leaves this module: HTTP status and, on a refusal, the text of
the OperationOutcome the server sent (FHIR servers explain a 4xx there)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from fhir_r4.outbox import Delivery


def outcome_text(body: str) -> str:
    """The human part of an OperationOutcome (each issue's diagnostics or details.text),
    else the start of the body."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        return body[:300]
    if isinstance(data, dict) and data.get("resourceType") == "OperationOutcome":
        texts = [str(i.get("diagnostics") or (i.get("details") or {}).get("text") or
                     i.get("code", "")) for i in data.get("issue", []) if isinstance(i, dict)]
        return "; ".join(t for t in texts if t)[:1000]
    return body[:300]


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
