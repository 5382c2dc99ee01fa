"""The HL7 ADT feed over a real TCP MLLP connection, on each store.

Messages are built with hl7apy (not python-hl7, which the listener parses with), framed by
hand and sent over a socket; the store is then compared with what the database sync makes of
the same patient and visit read from HIS tables.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hl7apy.core import Message
from sqlalchemy import insert, select, update

from core.clock import FakeClock
from core.enums import CancelReason, TaskStatus
from core.store.db import Database
from core.store.models import Encounter, FollowupTask, HisReject, Hl7Message, Patient
from hisync.hl7_apply import AdtApplier
from hisync.mapping import DEFAULT_MAPPING, load_mapping
from hisync.mllp import MllpListener, frame
from hisync.sync import HisSync
from hisync.testing import InMemorySource

NOW = dt.datetime(2026, 3, 1, 4, 0, tzinfo=dt.UTC)
REPO = Path(__file__).resolve().parents[2]
MAPPING = load_mapping(DEFAULT_MAPPING)


def adt(event: str, control_id: str, *, patient: str = "P001", visit: str = "V001",
        discharge: str = "20260301100000", dead: str = "", charset: str = "UNICODE UTF-8",
        dept: str = "0301", prior: str = "") -> Message:
    # A04, A08, A13 share A01's structure; A11 and A40 have their own
    structure = {"A03": "ADT_A03", "A11": "ADT_A09", "A40": "ADT_A39"}.get(event, "ADT_A01")
    m = Message(structure, version="2.5")
    _put(m.msh, msh_3="HIS", msh_5="FOLLOWUP", msh_7="20260301101500",
         msh_9=f"ADT^{event}^{structure}", msh_10=control_id, msh_11="P", msh_18=charset)
    _put(m.evn, evn_2="20260301101500")
    group = m.add_group("ADT_A39_PATIENT") if prior else None
    pid = group.add_segment("PID") if group is not None else m.pid
    for value in (f"{patient}^^^HIS^PI", f"M{patient}^^^HIS^MR"):
        pid.add_field("pid_3").value = value
    _put(pid, pid_5="张^三", pid_7="19600101", pid_8="M", pid_13="13800138000")
    if dead:
        _put(pid, pid_29="20260301090000", pid_30=dead)
    if group is not None:
        _put(group.add_segment("MRG"), mrg_1=f"{prior}^^^HIS^PI")
        return m
    _put(m.pv1, pv1_2="I", pv1_7="D01^李^医生", pv1_10=dept, pv1_19=visit, pv1_36="01",
         pv1_44="20260220080000")
    if discharge:
        _put(m.pv1, pv1_45=discharge)
    _put(m.add_segment("DG1"), dg1_1="1", dg1_3="I21.9^AMI^I10")
    return m


def _put(element: Any, **fields: str) -> None:
    """Set hl7apy fields by name (hl7apy validates each against the v2.5 structure)."""
    for name, value in fields.items():
        setattr(element, name, value)


class Feed:
    """A listener on a free port with the applier over `db`, run on one event loop."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.applier = AdtApplier(db, MAPPING, "hl7:test")
        self.applier.open(NOW)
        self.loop = asyncio.new_event_loop()

        async def handle(payload: bytes) -> bytes:
            return (await db.call(self.applier.apply, payload, NOW)).ack

        async def truncated(payload: bytes) -> None:
            await db.call(self.applier.keep_truncated, payload, NOW)

        self.listener = MllpListener(handle, truncated)
        self.port = self.loop.run_until_complete(self.listener.start("127.0.0.1", 0))

    async def _talk(self, payloads: tuple[bytes, ...], close_with: bytes) -> list[bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        acks = []
        for payload in payloads:
            writer.write(frame(payload))
            await writer.drain()
            raw = await asyncio.wait_for(reader.readuntil(b"\x1c\r"), 10)
            acks.append(raw[1:-2])
        if close_with:
            writer.write(close_with)
            await writer.drain()
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.2)  # the listener sees the close
        return acks

    def send(self, *payloads: bytes, close_with: bytes = b"") -> list[bytes]:
        """Send frames on one connection; returns the ACK payloads, in order."""
        return self.loop.run_until_complete(self._talk(payloads, close_with))

    def send_at_once(self, *connections: tuple[bytes, ...]) -> list[list[bytes]]:
        """Several connections at the same time, each sending its frames in order."""
        async def all_of_them() -> list[list[bytes]]:
            return list(await asyncio.gather(*(self._talk(c, b"") for c in connections)))
        return self.loop.run_until_complete(all_of_them())

    def close(self) -> None:
        self.loop.run_until_complete(self.listener.close())
        self.applier.close(NOW)
        self.loop.close()


@pytest.fixture
def feed(db: Database) -> Iterator[Feed]:
    f = Feed(db)
    yield f
    f.close()


def msa(ack: bytes) -> list[str]:
    segments = {s.split("|", 1)[0]: s.split("|") for s in ack.decode().split("\r") if s}
    return segments["MSA"][:3] + (segments["ERR"][2:4] if "ERR" in segments else [])


def er7(m: Message, charset: str = "utf-8") -> bytes:
    return str(m.to_er7()).encode(charset)


def _row(db: Database, model: Any, his_id: str) -> dict[str, Any]:
    with db.session() as s:
        obj = s.execute(select(model).where(model.his_id == his_id)).scalar_one()
        keys = [c.key for c in model.__table__.columns]
        return {k: getattr(obj, k) for k in keys
                if k not in ("id", "patient_id", "department_id", "updated_at", "plan_dirty")}


def test_a_discharge_is_stored_as_the_database_sync_stores_it(feed: Feed, tmp_path: Path
                                                              ) -> None:
    [ack] = feed.send(er7(adt("A03", "MSG-1")))
    assert msa(ack) == ["MSA", "AA", "MSG-1"]
    # the same patient and visit as HIS table rows, through the database sync
    other = Database(f"sqlite:///{tmp_path / 'sync.sqlite'}")
    other.migrate()
    source = InMemorySource({
        "his_patients": [{"patient_id": "P001", "mrn": "MP001", "patient_name": "张三",
                          "sex_code": "1", "birth_date": "1960-01-01", "phone": "13800138000",
                          "updated_at": "2026-03-01 10:15:00"}],
        "his_encounters": [{"visit_no": "V001", "patient_id": "P001", "visit_type": "ZY",
                            "dept_code": "0301", "doctor": "李医生",
                            "admit_time": "2026-02-20 08:00:00",
                            "discharge_time": "2026-03-01 10:00:00", "diag_codes": "I21.9",
                            "discharge_way": "1", "updated_at": "2026-03-01 10:15:00"}]})
    HisSync(other, source, MAPPING, FakeClock(NOW)).run()
    assert _row(feed.db, Patient, "P001") == _row(other, Patient, "P001")
    assert _row(feed.db, Encounter, "V001") == _row(other, Encounter, "V001")
    other.dispose()


def test_the_same_message_twice_is_applied_once_and_acknowledged_twice(feed: Feed) -> None:
    first, again = feed.send(er7(adt("A01", "MSG-2", discharge="")),
                             er7(adt("A01", "MSG-2", discharge="")))
    assert msa(first) == msa(again) == ["MSA", "AA", "MSG-2"]
    with feed.db.session() as s:
        assert s.execute(select(Hl7Message.control_id)).scalars().all() == ["MSG-2"]
        assert len(s.execute(select(Patient)).scalars().all()) == 1
    assert feed.applier.counts.inserted == 2  # one patient, one visit: the repeat wrote none


def test_several_connections_at_once_each_in_order(feed: Feed) -> None:
    # on PostgreSQL the messages of different connections are applied at the same time
    connections = [tuple(er7(adt(event, f"C{c}-{n}-{event}", patient=f"P{c}{n:02d}",
                                 visit=f"V{c}{n:02d}", discharge="" if event == "A01" else
                                 "20260301100000"))
                         for n in range(8) for event in ("A01", "A03"))
                   for c in range(4)]
    answers = feed.send_at_once(*connections)
    assert all(msa(a)[1] == "AA" for acks in answers for a in acks)
    with feed.db.session() as s:
        discharged = s.execute(select(Encounter.his_id).where(
            Encounter.discharge_at.is_not(None))).scalars().all()
        assert len(discharged) == 32 and len(s.execute(select(Patient)).all()) == 32
        assert len(s.execute(select(Hl7Message)).all()) == 64
    assert feed.applier.counts.inserted == 64 and feed.applier.counts.updated == 32


def test_a_death_marks_the_patient_deceased(feed: Feed) -> None:
    feed.send(er7(adt("A01", "MSG-3", discharge="")))
    [ack] = feed.send(er7(adt("A08", "MSG-4", dead="Y")))
    assert msa(ack)[1] == "AA"
    assert _row(feed.db, Patient, "P001")["deceased"] is True


def _pending_task(db: Database, his_id: str, key: str) -> None:
    with db.session() as s:
        enc = s.execute(select(Encounter).where(Encounter.his_id == his_id)).scalar_one()
        s.execute(insert(FollowupTask), [{
            "plan_key": key, "patient_id": enc.patient_id, "encounter_id": enc.id,
            "department_id": enc.department_id, "rule_id": "r", "offset_days": 3,
            "script_id": "s", "script_version": 1, "call_scripts": ["s"],
            "due_date": dt.date(2026, 3, 4), "calling_window": "09:00-11:30",
            "timezone": "Asia/Shanghai", "window_start": NOW, "window_end": NOW,
            "priority": 50, "status": TaskStatus.PENDING, "attempts": 0, "max_attempts": 3,
            "next_attempt_at": NOW, "created_at": NOW, "updated_at": NOW}])


def test_a_cancelled_discharge_cancels_the_visits_pending_follow_ups(feed: Feed) -> None:
    feed.send(er7(adt("A03", "MSG-5")))
    _pending_task(feed.db, "V001", "k1")
    [ack] = feed.send(er7(adt("A13", "MSG-6", discharge="")))
    assert msa(ack)[1] == "AA"
    with feed.db.session() as s:
        task = s.execute(select(FollowupTask)).scalar_one()
        assert (task.status, task.cancel_reason) == (TaskStatus.CANCELLED,
                                                      CancelReason.NO_LONGER_PLANNED)
        assert s.execute(select(Encounter.discharge_at)).scalar_one() is None


def test_a_cancelled_admission_removes_the_visit_so_the_patient_is_not_in_hospital(
        feed: Feed) -> None:
    feed.send(er7(adt("A01", "MSG-12", discharge="")))
    with feed.db.session() as s:
        assert s.execute(select(Encounter.his_id)).scalars().all() == ["V001"]
    [ack] = feed.send(er7(adt("A11", "MSG-13", discharge="")))
    assert msa(ack)[1] == "AA"
    with feed.db.session() as s:
        assert s.execute(select(Encounter.his_id)).scalars().all() == []
        assert s.execute(select(Patient.his_id)).scalars().all() == ["P001"]


def test_a_merge_moves_the_prior_patients_history_and_keeps_their_opt_out(
        feed: Feed) -> None:
    feed.send(er7(adt("A03", "MSG-14")), er7(adt("A03", "MSG-15", patient="P002",
                                                  visit="V002")))
    _pending_task(feed.db, "V002", "k2")
    with feed.db.session() as s:
        s.execute(update(Patient).where(Patient.his_id == "P002").values(opt_out_phone=True))
        s.execute(update(FollowupTask).values(status=TaskStatus.CLAIMED))
    [busy] = feed.send(er7(adt("A40", "MSG-16", prior="P002")))
    assert msa(busy)[1:4] == ["AE", "MSG-16", "MRG^1^1"]  # a call in progress: later
    with feed.db.session() as s:
        s.execute(update(FollowupTask).values(status=TaskStatus.PENDING))
    [ack] = feed.send(er7(adt("A40", "MSG-17", prior="P002")))
    assert msa(ack)[1] == "AA"
    with feed.db.session() as s:
        ids = dict(s.execute(select(Patient.his_id, Patient.id)).all())
        owners = s.execute(select(Encounter.his_id, Encounter.patient_id)
                           .order_by(Encounter.his_id)).all()
        assert [tuple(o) for o in owners] == [("V001", ids["P001"]), ("V002", ids["P001"])]
        assert s.execute(select(FollowupTask.patient_id)).scalar_one() == ids["P001"]
        survivor, prior = (s.get(Patient, ids[h]) for h in ("P001", "P002"))
        assert survivor is not None and prior is not None
        assert survivor.opt_out_phone is True and prior.merged_into_id == survivor.id


def test_a_bad_field_is_answered_ae_naming_it_and_kept_in_quarantine(feed: Feed) -> None:
    ack, again = feed.send(er7(adt("A03", "MSG-7", dept="9999")),
                           er7(adt("A03", "MSG-7", dept="9999")))
    assert msa(ack) == msa(again) == ["MSA", "AE", "MSG-7", "PV1^1^10", "103^^HL70357"]
    with feed.db.session() as s:
        reject = s.execute(select(HisReject).where(HisReject.entity == "encounters")
                           ).scalar_one()
        assert (reject.field, reject.row_key) == ("department", "V001")
    [fixed] = feed.send(er7(adt("A03", "MSG-7b")))  # the same visit, now right
    assert msa(fixed)[1] == "AA"
    with feed.db.session() as s:
        assert s.execute(select(HisReject.resolved_at)).scalar_one() == NOW


def test_unreadable_messages_are_answered_and_kept_raw_and_the_listener_goes_on(
        feed: Feed) -> None:
    gb = er7(adt("A03", "MSG-8", charset="GB 18030-2000"), "gb18030")
    acks = feed.send(
        b"garbage with no MSH",
        er7(adt("A03", "MSG-9")).replace(b"ADT^A03", b"ADT^A99"),  # an event not taken
        er7(adt("A03", "MSG-10", charset="KOI8-R")),  # a character set not taken
        er7(adt("A03", "MSG-11")).replace("张".encode(), b"\xff\xfe"),  # not UTF-8
        gb,  # GB 18030 is read
        close_with=b"\x0bMSH|^~\\&|HIS||FOLLOWUP||2026",  # cut off: no end block
    )
    assert [msa(a)[1] for a in acks] == ["AE", "AR", "AR", "AE", "AA"]
    with feed.db.session() as s:
        kept = s.execute(select(HisReject.field, HisReject.raw).where(
            HisReject.entity == "hl7").order_by(HisReject.id)).all()
    assert [field for field, _ in kept] == ["MSH", "MSH-9", "MSH-18", "MSH-18", "MLLP"]
    assert kept[0].raw == {"message": "garbage with no MSH"}
    assert "message_base64" in kept[3].raw  # not text in the charset it named: kept as bytes
    assert _row(feed.db, Patient, "P001")["name"] == "张三"  # the GB 18030 one applied


def _initialised(data_dir: Path, **settings: str) -> tuple[list[str], dict[str, str]]:
    """`followup init` in `data_dir`; the command line and environment to run more."""
    env = {**os.environ, "PYTHONPATH": str(REPO), **settings}
    env.pop("FOLLOWUP_CONFIG", None)
    base = [sys.executable, "-c", "from engine.cli import main; main()", "--data-dir",
            str(data_dir)]
    subprocess.run([*base, "init"], env=env, cwd=REPO, check=True, capture_output=True)
    return base, env


def test_followup_his_listen_serves_until_sigterm(tmp_path: Path) -> None:
    base, env = _initialised(tmp_path)
    proc = subprocess.Popen([*base, "his", "listen", "--port", "0"], env=env, cwd=REPO,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        port = int(re.search(r"port (\d+)", line).group(1))  # type: ignore[union-attr]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(frame(er7(adt("A03", "CLI-1"))))
            ack = conn.recv(65536)
        assert msa(ack[1:-2]) == ["MSA", "AA", "CLI-1"]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped: 2 rows read, 2 new" in err
    assert "Traceback" not in err


def test_followup_run_serves_the_feed_beside_the_dialer(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base, env = _initialised(tmp_path, FOLLOWUP_HIS__HL7_LISTEN="true",
                             FOLLOWUP_HIS__HL7_PORT=str(port))
    with (tmp_path / "run.log").open("wb") as log:
        proc = subprocess.Popen([*base, "run", "--backend", "sim"], env=env, cwd=REPO,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=10)
                break
            except ConnectionRefusedError:
                assert proc.poll() is None and time.monotonic() < deadline, \
                    (tmp_path / "run.log").read_text()
                time.sleep(0.2)
        with conn:
            conn.sendall(frame(er7(adt("A03", "RUN-1"))))
            ack = conn.recv(65536)
        assert msa(ack[1:-2]) == ["MSA", "AA", "RUN-1"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode == 0, (tmp_path / "run.log").read_text()
    store = Database(f"sqlite:///{tmp_path / 'followup.sqlite'}")
    try:
        assert _row(store, Encounter, "V001")["discharge_at"] is not None
    finally:
        store.dispose()


def test_a_ten_megabyte_message_is_refused_and_kept(feed: Feed) -> None:
    big = er7(adt("A08", "BIG-1")).replace(b"\rPV1", b"\rNTE|1||" + b"x" * 10_000_000
                                           + b"\rPV1")
    [ack] = feed.send(big)
    assert msa(ack)[1] == "AR" and "larger than" in ack.decode()
    with feed.db.session() as s:
        raw = s.execute(select(HisReject.raw).where(HisReject.entity == "hl7")).scalar_one()
    assert raw["message"] == big.decode()  # kept whole
    assert feed.send(er7(adt("A08", "AFTER-BIG")))  # and the listener goes on
