"""One patient's calls in full, by HIS id or MRN (for `followup calls`): the console's own
patient page and call detail (`console.calls`), read for every call of the patient."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from console.access import Principal
from console.calls import CallDetail, call_detail, patient_page
from core.errors import InvalidRequest, NotFound
from core.store.models import Patient


def find_patient(session: Session, ref: str) -> Patient:
    """The patient with HIS id `ref`, else the one with MRN `ref`.

    Raises NotFound (nobody) and InvalidRequest (the MRN names several patients).
    """
    found = session.execute(select(Patient).where(or_(Patient.his_id == ref,
                                                      Patient.mrn == ref))
                            .order_by(Patient.id)).scalars().all()
    exact = [p for p in found if p.his_id == ref]
    if exact:
        return exact[0]
    if not found:
        raise NotFound(f"no patient with HIS id or MRN {ref!r}")
    if len(found) > 1:
        raise InvalidRequest(f"MRN {ref!r} names {len(found)} patients (HIS ids "
                             f"{', '.join(p.his_id for p in found)}): give the HIS id")
    return found[0]


@dataclass(frozen=True, slots=True)
class PatientCalls:
    patient: Patient
    calls: tuple[CallDetail, ...]  # oldest first


def patient_calls(session: Session, who: Principal, ref: str) -> PatientCalls:
    """Every call attempt of the patient `ref` (HIS id or MRN) inside `who`'s departments,
    oldest first, each with its answers, recording and tickets.

    Raises NotFound and InvalidRequest (see `find_patient`).
    """
    patient = find_patient(session, ref)
    try:
        page = patient_page(session, who, patient.id)
    except NotFound:  # nothing of theirs in `who`'s departments: no calls to show
        return PatientCalls(patient, ())
    details = [call_detail(session, who, a.id) for _, attempts in page.tasks for a in attempts]
    details.sort(key=lambda c: (c.attempt.created_at, c.attempt.id))
    return PatientCalls(patient, tuple(details))
