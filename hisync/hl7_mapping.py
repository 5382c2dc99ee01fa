"""How an ADT feed's rows are read: HL7's standard code tables beside the hospital's
mapping, the row layouts, and where each of our fields sits in a message (for the ERR
segment of an AE)."""

from __future__ import annotations

from core.enums import EncounterType, RejectReason, Sex
from hisync.mapping import EntityMapping, HisMapping

# HL7 table 0001 (administrative sex), 0004 (patient class), 0112 (discharge disposition)
HL7_SEX = {"M": Sex.MALE, "F": Sex.FEMALE, "O": Sex.UNKNOWN, "U": Sex.UNKNOWN,
           "A": Sex.UNKNOWN, "N": Sex.UNKNOWN}
HL7_PATIENT_CLASS = {"I": EncounterType.INPATIENT, "B": EncounterType.INPATIENT,
                     "O": EncounterType.OUTPATIENT, "E": EncounterType.OUTPATIENT,
                     "R": EncounterType.OUTPATIENT}
HL7_DISPOSITION = {"01": "home", "02": "transfer", "03": "transfer", "04": "transfer",
                   "05": "transfer", "06": "community", "07": "against_advice",
                   "20": "died"}
PATIENT_COLUMNS = ("his_id", "mrn", "name", "sex", "birth_date", "phone", "phone_alt",
                   "language", "deceased", "sent_at")
ENCOUNTER_COLUMNS = ("his_id", "patient_his_id", "type", "department", "attending_doctor",
                     "admit_at", "discharge_at", "diagnoses", "disposition", "sent_at")
# where each of our fields comes from, for the ERR segment of an AE
HL7_FIELD = {
    ("patients", "his_id"): "PID-3", ("patients", "mrn"): "PID-3",
    ("patients", "name"): "PID-5", ("patients", "sex"): "PID-8",
    ("patients", "birth_date"): "PID-7", ("patients", "phone"): "PID-13",
    ("patients", "phone_alt"): "PID-14", ("patients", "language"): "PID-15",
    ("patients", "deceased"): "PID-30", ("patients", "sent_at"): "MSH-7",
    ("encounters", "his_id"): "PV1-19", ("encounters", "patient_his_id"): "PID-3",
    ("encounters", "type"): "PV1-2", ("encounters", "department"): "PV1-10",
    ("encounters", "attending_doctor"): "PV1-7", ("encounters", "admit_at"): "PV1-44",
    ("encounters", "discharge_at"): "PV1-45", ("encounters", "diagnoses"): "DG1-3",
    ("encounters", "disposition"): "PV1-36", ("encounters", "sent_at"): "MSH-7",
}
# a reason found while writing (not parsing) points at the segment's identifier
STORE_REASON_FIELD = {RejectReason.MRN_IN_USE: "mrn", RejectReason.UNKNOWN_PATIENT:
                       "patient_his_id", RejectReason.STORE_REFUSED: "his_id"}


def hl7_mapping(hospital: HisMapping) -> HisMapping:
    """The mapping an ADT feed is parsed with: our field names as the columns, the
    hospital's departments, time zone and code tables, and HL7's standard codes beside them
    (a feed that sends the HIS's own codes, as many Chinese feeds do, is read too)."""
    def entity(columns: tuple[str, ...]) -> EntityMapping:
        return EntityMapping(table="hl7", key="his_id", watermark="sent_at",
                             fields={c: c for c in columns if c != "sent_at"})

    disposition = {**HL7_DISPOSITION, **(hospital.disposition or {})}
    return hospital.model_copy(update={
        "patients": entity(PATIENT_COLUMNS), "encounters": entity(ENCOUNTER_COLUMNS),
        "sex": {**HL7_SEX, **hospital.sex},
        "encounter_type": {**HL7_PATIENT_CLASS, **hospital.encounter_type},
        "disposition": disposition})
