"""Legal hold on a recording: retention never purges a held recording. Placing a hold needs
a reason; placing and releasing are both audited."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from console.access import Principal
from console.calls import recording_in_scope
from console.forms import Form, FormError, text
from core.audit import AuditLog


@dataclass(frozen=True, slots=True)
class HoldForm:
    hold: bool
    reason: str

    @classmethod
    def parse(cls, form: Form) -> HoldForm:
        raw = form.get("hold", "")
        if raw not in ("0", "1"):
            raise FormError("hold", "unknown_choice")
        reason = text(form, "reason", max_len=256, required=raw == "1")
        return cls(raw == "1", reason)


def set_legal_hold(session: Session, who: Principal, audit: AuditLog, recording_id: int,
                   form: HoldForm) -> None:
    """Raises NotFound outside the caller's departments."""
    rec = recording_in_scope(session, who, recording_id)
    if rec.legal_hold == form.hold:
        return
    rec.legal_hold = form.hold
    audit.append(session, who.actor,
                 "recording.legal_hold" if form.hold else "recording.legal_hold_released",
                 "recording", rec.id, {"reason": form.reason, "sha256": rec.sha256})
