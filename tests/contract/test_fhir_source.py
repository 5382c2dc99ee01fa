"""A FHIR R4 server as the HIS: Patient and Encounter searched by _lastUpdated, paged, with
the visits' patients included; on each store.

No FHIR server installs from this machine's registries, so the server here is a local HTTP
server answering searches the way the specification describes them (searchset bundles,
`next` links, `_include`), over resources shaped like the specification's own examples; the
first patient is the specification's example patient as published (an Australian number:
quarantined with its field, as any HIS row with a number that is not one).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from sqlalchemy import select

from core.clock import FakeClock
from core.enums import EncounterType, RejectReason, Sex
from core.errors import SourceUnavailable
from core.store.db import Database
from core.store.models import Department, Encounter, HisReject, Patient
from hisync.fhir_rows import fhir_mapping
from hisync.fhir_source import FhirSource
from hisync.mapping import DEFAULT_MAPPING, load_mapping
from hisync.sync import HisSync, SyncOptions

NOW = dt.datetime(2026, 3, 2, 0, 0, tzinfo=dt.UTC)
PATIENT_SYSTEM = "urn:oid:1.2.156.1"
ENCOUNTER_SYSTEM = "urn:oid:1.2.156.2"
SPEC_EXAMPLE = {  # https://hl7.org/fhir/R4/patient-example.json, trimmed
    "resourceType": "Patient", "id": "example",
    "meta": {"lastUpdated": "2026-03-01T00:00:00Z"},
    "identifier": [{"use": "usual", "type": {"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
        "system": "urn:oid:1.2.36.146.595.217.0.1", "value": "12345"}],
    "name": [{"use": "official", "family": "Chalmers", "given": ["Peter", "James"]}],
    "telecom": [{"system": "phone", "value": "(03) 5555 6473", "use": "work"}],
    "gender": "male", "birthDate": "1974-12-25", "deceasedBoolean": False}


def patient(n: int, updated: str, phone: str = "13800138000") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": f"pat{n}", "meta": {"lastUpdated": updated},
            "identifier": [{"system": PATIENT_SYSTEM, "value": f"P{n:03d}"},
                           {"type": {"coding": [{"code": "MR"}]}, "value": f"MR{n:03d}"}],
            "name": [{"family": "张", "given": ["三"]}],
            "telecom": [{"system": "email", "value": "a@b.c"},
                        {"system": "phone", "value": phone}],
            "gender": "female" if n % 2 else "male", "birthDate": "1960-01-01",
            "communication": [{"language": {"coding": [{"code": "zh-CN"}]}}]}


def encounter(n: int, updated: str) -> dict[str, Any]:
    return {"resourceType": "Encounter", "id": f"enc{n}", "meta": {"lastUpdated": updated},
            "identifier": [{"system": ENCOUNTER_SYSTEM, "value": f"V{n:03d}"}],
            "status": "finished", "class": {"code": "IMP"},
            "serviceType": {"coding": [{"code": "0301"}]},
            "subject": {"reference": f"Patient/pat{n}"},
            "participant": [{"type": [{"coding": [{"code": "ATND"}]}],
                             "individual": {"display": "李医生"}}],
            "period": {"start": "2026-02-20T08:00:00+08:00", "end": "2026-03-01T10:00:00+08:00"},
            "reasonCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10",
                                        "code": "I21.9"}]}],
            "hospitalization": {"dischargeDisposition": {"coding": [{"code": "home"}]}}}


class FakeFhir(ThreadingHTTPServer):
    """Searches over `resources`: _lastUpdated=ge, _sort=_lastUpdated, _count with `next`
    links, _include=Encounter:subject. `down`: every request answers 503."""

    def __init__(self, resources: list[dict[str, Any]]) -> None:
        self.resources = resources
        self.down = False
        self.requests: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.requests.append(self.path)
                if fake.down:
                    self.send_response(503)
                    self.end_headers()
                    return
                body = json.dumps(fake.search(self.path)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return None

        super().__init__(("127.0.0.1", 0), Handler)

    def search(self, path: str) -> dict[str, Any]:
        url = urlparse(path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        kind = url.path.rsplit("/", 1)[-1]
        since = q.get("_lastUpdated", "ge")[2:]
        found = sorted((r for r in self.resources if r["resourceType"] == kind and
                        _instant(r["meta"]["lastUpdated"]) >= (_instant(since) if since else
                                                              dt.datetime.min.replace(tzinfo=dt.UTC))),
                       key=lambda r: _instant(r["meta"]["lastUpdated"]))
        offset, count = int(q.get("_offset", 0)), int(q.get("_count", 50))
        page = found[offset:offset + count]
        entries = [{"resource": r, "search": {"mode": "match"}} for r in page]
        if q.get("_include") == "Encounter:subject":
            refs = {r["subject"]["reference"] for r in page}
            entries += [{"resource": r, "search": {"mode": "include"}} for r in self.resources
                        if f"{r['resourceType']}/{r['id']}" in refs]
        links = []
        if offset + count < len(found):
            nxt = urlencode({**q, "_offset": offset + count})
            links.append({"relation": "next",
                          "url": f"http://127.0.0.1:{self.server_port}{url.path}?{nxt}"})
        return {"resourceType": "Bundle", "type": "searchset", "total": len(found),
                "link": links, "entry": entries}


def _instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def fhir() -> Iterator[FakeFhir]:
    resources: list[dict[str, Any]] = [SPEC_EXAMPLE]
    for n in range(1, 8):
        stamp = f"2026-03-01T0{n}:00:00+08:00"
        resources += [patient(n, stamp), encounter(n, stamp)]
    server = FakeFhir(resources)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _sync(db: Database, server: FakeFhir, **options: Any) -> Any:
    source = FhirSource(f"http://127.0.0.1:{server.server_port}/fhir", PATIENT_SYSTEM,
                        ENCOUNTER_SYSTEM)
    try:
        return HisSync(db, source, fhir_mapping(load_mapping(DEFAULT_MAPPING)), FakeClock(NOW),
                       SyncOptions(**{"batch_size": 3, **options}), sleep=lambda _s: None,
                       source_id="fhir-test").run()
    finally:
        source.close()


def test_patients_and_visits_are_read_page_by_page_and_parsed_as_the_sync_parses(
        db: Database, fhir: FakeFhir) -> None:
    report = _sync(db, fhir)
    assert (report.entities["patients"].inserted, report.entities["patients"].rejected) == (7, 1)
    assert report.entities["encounters"].inserted == 7
    assert sum("_offset" in r for r in fhir.requests) >= 4  # followed the next links
    with db.session() as s:
        p = s.execute(select(Patient).where(Patient.his_id == "P001")).scalar_one()
        assert (p.mrn, p.name, p.sex, p.phone, p.language) == (
            "MR001", "张三", Sex.FEMALE, "+8613800138000", "zh-CN")
        e = s.execute(select(Encounter).where(Encounter.his_id == "V001")).scalar_one()
        dept = s.get(Department, e.department_id)
        assert dept is not None and dept.code == "CARD"
        assert (e.type, e.attending_doctor, e.diagnoses, e.disposition) == (
            EncounterType.INPATIENT, "李医生", ["I21.9"], "home")
        assert e.discharge_at == dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.UTC)
        assert e.patient_id == p.id
        reject = s.execute(select(HisReject)).scalar_one()
        assert (reject.row_key, reject.field, reject.reason) == (
            "example", "phone", RejectReason.INVALID_PHONE)


def test_a_later_run_reads_from_the_watermark_and_updates_what_changed(
        db: Database, fhir: FakeFhir) -> None:
    _sync(db, fhir)
    fhir.resources.append(patient(3, "2026-03-01T12:00:00+08:00", phone="13912345678"))
    fhir.resources.remove(next(r for r in fhir.resources if r["id"] == "pat3"))
    fhir.requests.clear()
    report = _sync(db, fhir)
    assert report.entities["patients"].updated == 1
    assert report.entities["patients"].read < 4  # not everything again
    assert any("_lastUpdated=ge2026-03-01T" in r for r in fhir.requests)
    with db.session() as s:
        assert s.execute(select(Patient.phone).where(Patient.his_id == "P003")
                         ).scalar_one() == "+8613912345678"


def test_a_server_that_is_down_is_retried_then_reported(db: Database, fhir: FakeFhir) -> None:
    fhir.down = True
    with pytest.raises(SourceUnavailable, match="HTTP 503"):
        _sync(db, fhir, retries=2)
    assert len(fhir.requests) == 3  # the first try and two retries
