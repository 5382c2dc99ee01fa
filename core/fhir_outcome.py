"""The human part of a FHIR server's refusal: its OperationOutcome's issue texts."""

from __future__ import annotations

import json
from typing import Any


def outcome_text(body: str) -> str:
    """Each issue's diagnostics (else details.text, else code), joined; the start of the
    body when it is not an OperationOutcome."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        return body[:300]
    if isinstance(data, dict) and data.get("resourceType") == "OperationOutcome":
        texts = [str(i.get("diagnostics") or (i.get("details") or {}).get("text") or
                     i.get("code", "")) for i in data.get("issue", []) if isinstance(i, dict)]
        return "; ".join(t for t in texts if t)[:1000]
    return body[:300]
