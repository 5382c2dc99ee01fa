"""FHIR R4 Patient and Encounter resources read into the raw rows the database sync parses.

As for the HL7 feed (`hisync.hl7_mapping`), the columns are our field names and the
mapping is the hospital's with FHIR's own code tables beside its tables: administrative
gender, the encounter class (v3 ActCode) and the discharge disposition. A patient is keyed
by the identifier in the HIS's system (`fhir.patient_system`), its record number by an
identifier typed MR; a visit by the identifier in `fhir.encounter_system`. The department is
the encounter's service type code, looked up in the mapping's department table. The
watermark is meta.lastUpdated in UTC.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from core.enums import EncounterType, Sex
from hisync.mapping import EntityMapping, HisMapping
from hisync.records import RawRow

FHIR_GENDER = {"male": Sex.MALE, "female": Sex.FEMALE, "other": Sex.UNKNOWN,
               "unknown": Sex.UNKNOWN}
FHIR_CLASS = {"IMP": EncounterType.INPATIENT, "ACUTE": EncounterType.INPATIENT,
              "NONAC": EncounterType.INPATIENT, "SS": EncounterType.INPATIENT,
              "AMB": EncounterType.OUTPATIENT, "EMER": EncounterType.OUTPATIENT,
              "OBSENC": EncounterType.OUTPATIENT}
FHIR_DISPOSITION = {"home": "home", "alt-home": "home", "other-hcf": "transfer",
                    "hosp": "transfer", "long": "transfer", "snf": "transfer",
                    "rehab": "transfer", "psy": "transfer", "aadvice": "against_advice",
                    "exp": "died", "oth": "other"}
PATIENT_COLUMNS = ("his_id", "mrn", "name", "sex", "birth_date", "phone", "phone_alt",
                   "language", "deceased", "last_updated")
ENCOUNTER_COLUMNS = ("his_id", "patient_his_id", "type", "department", "attending_doctor",
                     "admit_at", "discharge_at", "diagnoses", "disposition", "last_updated")


def fhir_mapping(hospital: HisMapping) -> HisMapping:
    """The mapping a FHIR source is parsed with (see the module doc)."""
    def entity(resource: str, columns: tuple[str, ...]) -> EntityMapping:
        return EntityMapping(table=resource, key="his_id", watermark="last_updated",
                             fields={c: c for c in columns if c != "last_updated"})

    return hospital.model_copy(update={
        "patients": entity("Patient", PATIENT_COLUMNS),
        "encounters": entity("Encounter", ENCOUNTER_COLUMNS),
        "sex": {**FHIR_GENDER, **hospital.sex},
        "encounter_type": {**FHIR_CLASS, **hospital.encounter_type},
        "disposition": {**FHIR_DISPOSITION, **(hospital.disposition or {})}})


def last_updated(resource: dict[str, Any]) -> str | None:
    """meta.lastUpdated as a UTC ISO instant (the rows' watermark), None when absent."""
    raw = (resource.get("meta") or {}).get("lastUpdated")
    if not raw:
        return None
    try:
        at = dt.datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return str(raw)
    if at.tzinfo is None:
        return str(raw)
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _identifier(resource: dict[str, Any], system: str) -> str | None:
    for ident in resource.get("identifier") or []:
        if ident.get("system") == system and ident.get("value"):
            return str(ident["value"])
    return None


def _typed_identifier(resource: dict[str, Any], code: str) -> str | None:
    for ident in resource.get("identifier") or []:
        codes = {c.get("code") for c in (ident.get("type") or {}).get("coding") or []}
        if code in codes and ident.get("value"):
            return str(ident["value"])
    return None


def _name(names: list[dict[str, Any]]) -> str | None:
    """The official (else the first) name: family then given, without a space for CJK."""
    if not names:
        return None
    name = next((n for n in names if n.get("use") == "official"), names[0])
    if name.get("text"):
        return str(name["text"])
    family = str(name.get("family") or "")
    given = [str(g) for g in name.get("given") or []]
    if any("\u3400" <= ch <= "\u9fff" for ch in family + "".join(given)):
        return (family + "".join(given)) or None
    return " ".join([*given, family]).strip() or None


def patient_row(resource: dict[str, Any], patient_system: str) -> RawRow:
    his_id = _identifier(resource, patient_system) or resource.get("id")
    phones = [str(t["value"]) for t in resource.get("telecom") or []
              if t.get("system") == "phone" and t.get("value")]
    deceased = resource.get("deceasedBoolean")
    language = next((c.get("code") for comm in resource.get("communication") or []
                     for c in (comm.get("language") or {}).get("coding") or []), None)
    return {
        "his_id": his_id, "mrn": _typed_identifier(resource, "MR") or his_id,
        "name": _name(resource.get("name") or []), "sex": resource.get("gender"),
        "birth_date": resource.get("birthDate"),
        "phone": phones[0] if phones else None,
        "phone_alt": phones[1] if len(phones) > 1 else None, "language": language,
        "deceased": "1" if deceased is True or resource.get("deceasedDateTime") else
                    "0" if deceased is False else None,
        "last_updated": last_updated(resource),
    }


def encounter_row(resource: dict[str, Any], encounter_system: str,
                  patients: dict[str, str]) -> RawRow:
    """`patients`: "Patient/<id>" -> the patient's HIS id, from the search's included
    subjects (a subject given by identifier needs none)."""
    subject = resource.get("subject") or {}
    patient = (subject.get("identifier") or {}).get("value") or \
        patients.get(str(subject.get("reference", "")))
    period = resource.get("period") or {}
    service = next((c.get("code") for c in (resource.get("serviceType") or {}).get("coding")
                    or []), None)
    attending = next((p.get("individual", {}).get("display")
                      for p in resource.get("participant") or []
                      for t in p.get("type") or [] for c in t.get("coding") or []
                      if c.get("code") == "ATND"), None)
    disposition = next((c.get("code") for c in ((resource.get("hospitalization") or {})
                                                .get("dischargeDisposition") or {})
                        .get("coding") or []), None)
    reasons = [c.get("code") for r in resource.get("reasonCode") or []
               for c in r.get("coding") or [] if c.get("code")]
    return {
        "his_id": _identifier(resource, encounter_system) or resource.get("id"),
        "patient_his_id": patient, "type": (resource.get("class") or {}).get("code"),
        "department": service, "attending_doctor": attending,
        "admit_at": period.get("start"), "discharge_at": period.get("end"),
        "diagnoses": ",".join(reasons) or None, "disposition": disposition,
        "last_updated": last_updated(resource),
    }
