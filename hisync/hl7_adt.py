"""HL7 v2 ADT messages as typed values: decoded by their own character set, parsed with
`hl7` (python-hl7), and read into the same raw rows the database sync reads from HIS tables.

Why python-hl7: maintained, pure Python, no schema files, a plain tree of fields. Its asyncio
MLLP streams decode a whole connection with one character set, while an HL7 sender names
one per message (MSH-18: a Chinese HIS sends GB 18030 on the same link as UTF-8), so the
listener (`hisync.mllp`) frames bytes itself and this module decodes each message by its
own MSH-18.

A message becomes an `AdtMessage`: its control id (MSH-10, the idempotency key), the
trigger event, the patient as a raw row of our field names (PID), the visit as another
(PV1, DG1), and for a merge the prior patient id (MRG-1). The rows then go through the
database sync's own parser and store writer (`hisync.hl7_apply`), so validation, the
department table and the quarantine are the same. A message that cannot be read raises
`Hl7Error` with the field it failed on and the acknowledgement code it earns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import hl7

from hisync.records import RawRow


class AdtEvent(StrEnum):
    """The ADT trigger events the listener applies."""

    ADMIT = "A01"
    TRANSFER = "A02"
    DISCHARGE = "A03"
    REGISTER = "A04"
    UPDATE = "A08"
    CANCEL_ADMIT = "A11"
    CANCEL_DISCHARGE = "A13"
    MERGE = "A40"


class AckCode(StrEnum):
    """HL7 table 0008, original mode."""

    ACCEPT = "AA"
    ERROR = "AE"  # the message was understood but is wrong: fix it and send again
    REJECT = "AR"  # not for this receiver (event, version, character set)


class Hl7Error(Exception):
    """A message this receiver cannot apply: the field (e.g. PID-3) and why."""

    def __init__(self, field: str, detail: str, ack: AckCode = AckCode.ERROR) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail
        self.ack = ack


# MSH-18 names (HL7 table 0211) -> Python codecs. A message without MSH-18 is read as UTF-8
# (HL7's default is ASCII, which UTF-8 contains).
CHARSETS = {"": "utf-8", "ASCII": "ascii", "UNICODE UTF-8": "utf-8", "UTF-8": "utf-8",
            "8859/1": "latin-1", "GB 18030-2000": "gb18030", "GB18030": "gb18030",
            "GBK": "gbk", "CNS 11643-1992": "big5"}
_MSH18 = re.compile(rb"^MSH(.)")


def charset_of(frame: bytes) -> str:
    """The codec MSH-18 names (the MSH segment is ASCII in every HL7 character set)."""
    head = frame.split(b"\r", 1)[0]
    match = _MSH18.match(head)
    if match is None:
        raise Hl7Error("MSH", "the message does not start with an MSH segment")
    fields = head.split(match.group(1))
    # MSH-18 may repeat: the first repetition is the message's own character set (the
    # repetition separator is the second encoding character, MSH-2)
    repeat = fields[1][1:2] if len(fields) > 1 and len(fields[1]) > 1 else b"~"
    raw = fields[17].split(repeat)[0] if len(fields) > 17 else b""
    name = raw.decode("ascii", "replace").strip()
    codec = CHARSETS.get(name.upper())
    if codec is None:
        raise Hl7Error("MSH-18", f"character set {name!r} is not supported", AckCode.REJECT)
    return codec


def decode(frame: bytes) -> str:
    """The message text, read in the character set it names."""
    codec = charset_of(frame)
    try:
        return frame.decode(codec)
    except UnicodeDecodeError as exc:
        raise Hl7Error("MSH-18", f"the message is not valid {codec} (byte {exc.start})"
                       ) from None


@dataclass(frozen=True)
class AdtMessage:
    """One ADT message, read. `patient` and `encounter` use the field names of
    `hisync.mapping` (PATIENT_FIELDS, ENCOUNTER_FIELDS) plus `sent_at`, the message time,
    which plays the watermark's part."""

    control_id: str
    event: AdtEvent
    sent_at: str
    patient: RawRow
    encounter: RawRow | None
    prior_patient_id: str | None = None


def _ts(value: str) -> str | None:
    """An HL7 TS (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]) as ISO 8601, or None when empty.
    A value that is not one is passed on as it is: the row parser rejects it by field."""
    value = value.strip()
    if not value:
        return None
    m = re.fullmatch(r"(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})?(\d{2})?(?:\.\d+)?)?"
                     r"([+-]\d{4})?", value)
    if m is None:
        return value
    y, mo, d, h, mi, s, tz = m.groups()
    if h is None:
        return f"{y}-{mo}-{d}"
    iso = f"{y}-{mo}-{d} {h}:{mi or '00'}:{s or '00'}"
    return iso + (f"{tz[:3]}:{tz[3:]}" if tz else "")


def _name(family: str, given: str) -> str | None:
    """A person's name as written: 张三 (CJK, family first, no space) or "Ann Lee"."""
    family, given = family.strip(), given.strip()
    if not family or not given:
        return family or given or None
    if re.search(r"[\u3400-\u9fff]", family + given):
        return family + given
    return f"{given} {family}"


class _Reader:
    """Field access by HL7 position (1-based, as the standard numbers them)."""

    def __init__(self, message: hl7.Message) -> None:
        self.message = message

    def segment(self, name: str, required: bool = True) -> hl7.Segment | None:
        try:
            return self.message.segment(name)
        except KeyError:
            if required:
                raise Hl7Error(name, f"the message has no {name} segment") from None
            return None

    def get(self, segment: hl7.Segment | None, field: int, rep: int = 1, comp: int = 1
            ) -> str:
        """Field `field`, repetition `rep`, component `comp` (first subcomponent), with
        HL7 escapes undone; "" when absent. Read off python-hl7's tree directly: its
        `extract_field` builds an accessor per call, a fifth of a message's cost here."""
        if segment is None or len(segment) <= field:
            return ""
        value: object = segment[field]
        if not value:
            return ""
        head = value[0]  # type: ignore[index]
        if isinstance(head, str):  # a plain value: no repetitions, no components
            text = head if rep == 1 and comp == 1 else ""
        else:
            if rep > len(value):  # type: ignore[arg-type]
                return ""
            repetition = value[rep - 1]  # type: ignore[index]
            if comp > len(repetition):
                return ""
            component = repetition[comp - 1]
            while not isinstance(component, str):  # subcomponents: the first
                if not component:
                    return ""
                component = component[0]
            text = component
        if "\\" in text:
            text = str(self.message.unescape(text))
        return text.strip()

    @staticmethod
    def repetitions(segment: hl7.Segment | None, field: int) -> int:
        if segment is None or len(segment) <= field:
            return 0
        value = segment[field]
        # a repeated field holds Repetitions; one that does not repeat holds its components
        if isinstance(value, hl7.Field) and value and isinstance(value[0], hl7.Repetition):
            return len(value)
        return 1


def _identifiers(r: _Reader, pid: hl7.Segment) -> tuple[str, str]:
    """(his_id, mrn) from PID-3: the PI identifier (else the first) and the MR one (else
    the same). The database sync keys patients by the HIS id, so both sources agree."""
    ids: dict[str, str] = {}
    first = ""
    for rep in range(1, r.repetitions(pid, 3) + 1):
        value = r.get(pid, 3, rep, 1)
        kind = r.get(pid, 3, rep, 5).upper()
        if value:
            first = first or value
            ids.setdefault(kind, value)
    his_id = ids.get("PI", first)
    if not his_id:
        raise Hl7Error("PID-3", "no patient identifier")
    return his_id, ids.get("MR", his_id)


def _phones(r: _Reader, pid: hl7.Segment) -> tuple[str | None, str | None]:
    """Home phone(s) PID-13, then the business phone PID-14: the first two numbers given
    (component 1, or the unformatted number in component 12)."""
    numbers: list[str] = []
    for field in (13, 14):
        for rep in range(1, r.repetitions(pid, field) + 1):
            if r.get(pid, field, rep, 2).upper() in ("NET", "X.400"):
                continue  # an e-mail address, not a phone
            number = r.get(pid, field, rep, 1) or r.get(pid, field, rep, 12)
            if number:
                numbers.append(number)
    return (numbers[0] if numbers else None), (numbers[1] if len(numbers) > 1 else None)


def _patient_row(r: _Reader, pid: hl7.Segment, sent_at: str) -> RawRow:
    his_id, mrn = _identifiers(r, pid)
    phone, phone_alt = _phones(r, pid)
    birth = _ts(r.get(pid, 7))
    deceased = r.get(pid, 30).upper()
    return {
        "his_id": his_id, "mrn": mrn,
        "name": _name(r.get(pid, 5, 1, 1), r.get(pid, 5, 1, 2)),
        "sex": r.get(pid, 8) or None,
        "birth_date": birth[:10] if birth else None,
        "phone": phone, "phone_alt": phone_alt,
        "language": r.get(pid, 15) or None,
        # PID-30 Y, or a death time in PID-29 alone: the patient died
        "deceased": "1" if deceased == "Y" or (not deceased and r.get(pid, 29)) else
                    "0" if deceased == "N" else None,
        "sent_at": sent_at,
    }


def _encounter_row(r: _Reader, patient_his_id: str, sent_at: str) -> RawRow | None:
    pv1 = r.segment("PV1", required=False)
    visit = r.get(pv1, 19)
    if pv1 is None or not visit:
        return None
    diagnoses = [r.get(seg, 3) for seg in r.message.segments("DG1")] \
        if _has(r.message, "DG1") else []
    return {
        "his_id": visit, "patient_his_id": patient_his_id,
        "type": r.get(pv1, 2) or None,
        # the hospital service (PV1-10), else the assigned location's point of care
        "department": r.get(pv1, 10) or r.get(pv1, 3) or None,
        "attending_doctor": _name(r.get(pv1, 7, 1, 2), r.get(pv1, 7, 1, 3)),
        "admit_at": _ts(r.get(pv1, 44)),
        "discharge_at": _ts(r.get(pv1, 45)),
        "diagnoses": ",".join(d for d in diagnoses if d) or None,
        "disposition": r.get(pv1, 36) or None,
        "sent_at": sent_at,
    }


def _has(message: hl7.Message, name: str) -> bool:
    return any(str(seg[0]) == name for seg in message)


# segments that must come in this order where a message has them (the ADT structures put
# the patient before the visit and the merge after the patient it keeps)
_ORDER = ("MSH", "PID", "MRG", "PV1")


def _check_order(message: hl7.Message) -> None:
    """Raise Hl7Error (AE) when MSH is not first or PID, MRG and PV1 come out of order: a
    sender that scrambles segments may have paired the wrong patient and visit."""
    names = [str(seg[0]) for seg in message]
    if names[0] != "MSH":
        raise Hl7Error("MSH", f"the message starts with {names[0]}, not MSH")
    seen = [n for n in names if n in _ORDER]
    firsts = [n for i, n in enumerate(seen) if n not in seen[:i]]
    expected = [n for n in _ORDER if n in firsts]
    if firsts != expected:
        raise Hl7Error(firsts[next(i for i, (a, b) in enumerate(zip(firsts, expected,
                                                                     strict=True)) if a != b)],
                       f"segments out of order: {' '.join(firsts)} (expected "
                       f"{' '.join(expected)})")


def parse_hl7(text: str) -> hl7.Message:
    """The message's tree (python-hl7), read once for the fields and for the ACK. Raises
    Hl7Error when the text is not an HL7 v2 message."""
    try:
        message = hl7.parse(text.replace("\n", "\r").strip("\r"))
        message.segment("MSH")
    except Exception as exc:  # python-hl7 raises several kinds on malformed text
        raise Hl7Error("MSH", f"not an HL7 v2 message ({type(exc).__name__})") from None
    return message


def read_adt(message: hl7.Message) -> AdtMessage:
    """Read one ADT message. Raises Hl7Error (AE: a required field is missing or wrong;
    AR: an event this receiver does not apply)."""
    r = _Reader(message)
    msh = r.segment("MSH")
    control_id = r.get(msh, 10)
    if not control_id:
        raise Hl7Error("MSH-10", "no message control id")
    kind, trigger = r.get(msh, 9, 1, 1).upper(), r.get(msh, 9, 1, 2).upper()
    if kind != "ADT":
        raise Hl7Error("MSH-9", f"message type {kind or '(none)'} is not ADT", AckCode.REJECT)
    try:
        event = AdtEvent(trigger)
    except ValueError:
        raise Hl7Error("MSH-9", f"event {trigger or '(none)'} is not applied here "
                       f"(applied: {', '.join(e.value for e in AdtEvent)})",
                       AckCode.REJECT) from None
    sent_at = _ts(r.get(msh, 7))
    if not sent_at:
        raise Hl7Error("MSH-7", "no message date/time")
    pid = r.segment("PID")
    assert pid is not None
    _check_order(message)
    patient = _patient_row(r, pid, sent_at)
    his_id = patient["his_id"]
    assert his_id is not None
    prior = None
    if event is AdtEvent.MERGE:
        mrg = r.segment("MRG")
        prior = r.get(mrg, 1)
        if not prior:
            raise Hl7Error("MRG-1", "a merge names no prior patient identifier")
    return AdtMessage(control_id, event, sent_at, patient,
                      _encounter_row(r, his_id, sent_at), prior)
