"""What an ADT event does to visits and patients beyond writing their rows: a discharge or
an admission taken back, two patient records merged. Each runs inside the message's own
transaction (`hisync.hl7_apply`)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, delete, or_, select, update

from core.enums import AttemptStatus, CancelReason, TaskStatus
from core.store.models import CallAttempt, Encounter, FollowupTask, Patient, Ticket
from hisync.hl7_adt import Hl7Error


def cancel_pending(conn: Connection, visit: str, now: dt.datetime) -> None:
    """A discharge taken back: the follow-ups planned from it must not call."""
    encounter_id = conn.execute(select(Encounter.id).where(
        Encounter.his_id == visit)).scalar_one_or_none()
    if encounter_id is None:
        return
    conn.execute(update(FollowupTask).where(
        FollowupTask.encounter_id == encounter_id,
        FollowupTask.status == TaskStatus.PENDING).values(
        status=TaskStatus.CANCELLED, cancel_reason=CancelReason.NO_LONGER_PLANNED,
        closed_at=now, updated_at=now))

def merge_patients(conn: Connection, survivor: str, prior: str, now: dt.datetime
                   ) -> Hl7Error | None:
    """Move everything of `prior` to `survivor` (HIS ids)."""
    if prior == survivor:
        return None
    ids = dict(conn.execute(select(Patient.his_id, Patient.id).where(
        Patient.his_id.in_([survivor, prior]))).all())
    if prior not in ids:
        return None  # never synced here: nothing to move
    old, new = ids[prior], ids[survivor]
    live = conn.execute(select(CallAttempt.id).where(
        CallAttempt.patient_id == old,
        CallAttempt.status.in_([AttemptStatus.DIALING, AttemptStatus.IN_CALL])
    ).limit(1)).first() or conn.execute(select(FollowupTask.id).where(
        FollowupTask.patient_id == old, FollowupTask.status == TaskStatus.CLAIMED
    ).limit(1)).first()
    if live is not None:
        return Hl7Error("MRG-1", f"patient {prior} has a call in progress; send the "
                        "merge again when it has ended")
    for table in (Encounter, FollowupTask, CallAttempt, Ticket):
        conn.execute(update(table).where(table.patient_id == old)
                     .values(patient_id=new))
    flags = conn.execute(select(Patient.deceased, Patient.opt_out_phone,
                                Patient.opt_out_sms).where(Patient.id == old)).one()
    conn.execute(update(Patient).where(Patient.id == new).values(
        deceased=or_(Patient.deceased, flags.deceased),
        opt_out_phone=or_(Patient.opt_out_phone, flags.opt_out_phone),
        opt_out_sms=or_(Patient.opt_out_sms, flags.opt_out_sms),
        plan_dirty=True, updated_at=now))
    conn.execute(update(Patient).where(Patient.id == old).values(
        merged_into_id=new, plan_dirty=True, updated_at=now))
    return None

def cancel_admission(conn: Connection, visit: str, now: dt.datetime) -> None:
    """An admission that did not happen: a stored visit with no follow-ups goes (it would
    count the patient as in hospital and stop their calls); one with follow-ups keeps
    its history and its pending ones are cancelled."""
    encounter_id = conn.execute(select(Encounter.id).where(
        Encounter.his_id == visit)).scalar_one_or_none()
    if encounter_id is None:
        return
    planned = conn.execute(select(FollowupTask.id).where(
        FollowupTask.encounter_id == encounter_id).limit(1)).first()
    if planned is None:
        conn.execute(delete(Encounter).where(Encounter.id == encounter_id))
        return
    cancel_pending(conn, visit, now)
