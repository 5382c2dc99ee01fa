"""The FHIR outbox against a local HTTP server that behaves like a FHIR server: down, failing,
refusing with an OperationOutcome, then taking everything; on each store."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from sqlalchemy import select

from core.enums import OutboxStatus, QuestionKind
from core.store.db import Database
from core.store.models import FhirOutbox
from fhir_r4.http_server import HttpFhirServer
from fhir_r4.outbox import deliver, enqueue
from fhir_r4.resources import AnswerFact, FinishedFollowup, Identity, questionnaire_response

NOW = dt.datetime(2026, 3, 4, 2, 0, tzinfo=dt.UTC)


class FakeFhirServer(ThreadingHTTPServer):
    """Answers PUT <type>/<id> with `mode`: ok (201, keeps the body), fail (503), refuse
    (400 with an OperationOutcome)."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.stored: dict[str, dict[str, object]] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if server.mode == "fail":
                    self.send_response(503)
                    self.end_headers()
                    return
                if server.mode == "refuse":
                    outcome = {"resourceType": "OperationOutcome", "issue": [
                        {"severity": "error", "code": "invalid",
                         "diagnostics": "QuestionnaireResponse.subject: unknown patient"}]}
                    raw = json.dumps(outcome).encode()
                    self.send_response(400)
                    self.send_header("Content-Type", "application/fhir+json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                    return
                server.stored[self.path] = json.loads(body)
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def fhir_server() -> Iterator[FakeFhirServer]:
    server = FakeFhirServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _response(task: int) -> dict[str, object]:
    return questionnaire_response(FinishedFollowup(
        task, "cardiology-post-discharge", 1, "zh-CN", f"P{task}", f"V{task}", NOW, True,
        (AnswerFact("chest_pain", QuestionKind.YES_NO, "no", None),)), Identity())


def _states(db: Database) -> list[tuple[str, OutboxStatus, int]]:
    with db.session() as s:
        return [(r.resource_id, r.status, r.attempts) for r in s.execute(
            select(FhirOutbox).order_by(FhirOutbox.id)).scalars()]


def test_nothing_is_lost_while_the_server_is_down_or_failing(
        db: Database, fhir_server: FakeFhirServer) -> None:
    with db.session() as s:
        assert enqueue(s, [(None, _response(1)), (None, _response(2))], NOW) == 2
        assert enqueue(s, [(None, _response(1))], NOW) == 0  # queued once
    down = HttpFhirServer("http://127.0.0.1:9", timeout_s=2)  # nothing listens there
    with db.session() as s:
        report = deliver(s, down, NOW)
    assert (report.sent, report.retried) == (0, 2)
    fhir_server.mode = "fail"
    server = HttpFhirServer(f"http://127.0.0.1:{fhir_server.server_port}/fhir")
    with db.session() as s:
        assert deliver(s, server, NOW).sent == 0  # not due yet: backing off
        report = deliver(s, server, NOW + dt.timedelta(minutes=1))
    assert report.retried == 2
    assert [st for _, st, _ in _states(db)] == [OutboxStatus.PENDING] * 2
    fhir_server.mode = "ok"
    with db.session() as s:
        assert deliver(s, server, NOW + dt.timedelta(minutes=2)).sent == 0  # 2 min backoff
        assert deliver(s, server, NOW + dt.timedelta(minutes=3)).sent == 2
        assert deliver(s, server, NOW + dt.timedelta(hours=2)).sent == 0  # sent once
    assert _states(db) == [("followup-1-cardiology-post-discharge", OutboxStatus.SENT, 3),
                           ("followup-2-cardiology-post-discharge", OutboxStatus.SENT, 3)]
    for path, body in fhir_server.stored.items():
        assert path.startswith("/fhir/QuestionnaireResponse/followup-")
        QuestionnaireResponse.model_validate(body)
    server.close()
    down.close()


def test_a_refusal_is_kept_with_the_servers_reason_and_not_sent_again(
        db: Database, fhir_server: FakeFhirServer) -> None:
    fhir_server.mode = "refuse"
    server = HttpFhirServer(f"http://127.0.0.1:{fhir_server.server_port}")
    with db.session() as s:
        enqueue(s, [(None, _response(3))], NOW)
        assert deliver(s, server, NOW).refused == 1
        assert deliver(s, server, NOW + dt.timedelta(days=1)).refused == 0
        row = s.execute(select(FhirOutbox)).scalar_one()
    assert row.status is OutboxStatus.REFUSED
    assert row.last_error == "HTTP 400: QuestionnaireResponse.subject: unknown patient"
    server.close()
