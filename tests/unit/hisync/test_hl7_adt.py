"""Reading ADT messages into typed values: character sets, fields, and refusals."""

from __future__ import annotations

import pytest

from hisync.hl7_adt import AckCode, AdtEvent, AdtMessage, Hl7Error, decode, parse_hl7, read_adt

MSH = "MSH|^~\\&|HIS|H|FOLLOWUP|H|{ts}||ADT^{event}^ADT_A01|{cid}|P|2.5|||||CHN|{charset}"
PID = ("PID|1||M9^^^HIS^MR~P9^^^HIS^PI||{name}||1960|F|||||^NET^Internet^a@b.c~"
       "13800138000^PRN^PH|^^^^^^^^^^^+862112345678|en")


def parse_adt(text: str) -> AdtMessage:
    return read_adt(parse_hl7(text))


def message(event: str = "A08", cid: str = "C1", ts: str = "202603011015+0800",
            charset: str = "UNICODE UTF-8", name: str = "Lee^Ann", extra: str = "") -> str:
    return "\r".join([MSH.format(ts=ts, event=event, cid=cid, charset=charset),
                      PID.format(name=name)] + ([extra] if extra else []))


def test_fields_are_read_by_position_and_identifier_type() -> None:
    m = parse_adt(message())
    assert (m.control_id, m.event, m.sent_at) == ("C1", AdtEvent.UPDATE,
                                                  "2026-03-01 10:15:00+08:00")
    p = m.patient
    # the PI identifier is the HIS id even when the MR one comes first; e-mail is skipped;
    # the business phone's unformatted number (component 12) is the second phone
    assert (p["his_id"], p["mrn"], p["name"]) == ("P9", "M9", "Ann Lee")
    assert (p["phone"], p["phone_alt"], p["birth_date"]) == ("13800138000",
                                                             "+862112345678", "1960")
    assert m.encounter is None  # no PV1: the patient alone


def test_a_chinese_name_is_family_then_given_without_a_space() -> None:
    assert parse_adt(message(name="欧阳^娜娜")).patient["name"] == "欧阳娜娜"


@pytest.mark.parametrize(("charset", "codec"), [("GB 18030-2000", "gb18030"),
                                                ("UNICODE UTF-8~GB 18030-2000", "utf-8"),
                                                ("", "utf-8")])
def test_each_message_is_decoded_by_its_own_msh_18(charset: str, codec: str) -> None:
    text = message(charset=charset, name="张^三")
    assert parse_adt(decode(text.encode(codec))).patient["name"] == "张三"


@pytest.mark.parametrize(("text", "field", "ack"), [
    (message(event="A99"), "MSH-9", AckCode.REJECT),
    (message().replace("ADT^A08", "ORU^R01"), "MSH-9", AckCode.REJECT),
    (message(cid=""), "MSH-10", AckCode.ERROR),
    (message(ts=""), "MSH-7", AckCode.ERROR),
    (message().split("\r")[0], "PID", AckCode.ERROR),
    (message(event="A40"), "MRG", AckCode.ERROR),
    (message(event="A40", extra="MRG|"), "MRG-1", AckCode.ERROR),
    ("PID|1||X", "MSH", AckCode.ERROR),
    ("\r".join([message().split("\r")[0], "PV1|1|I", PID.format(name="Lee^Ann")]), "PV1",
     AckCode.ERROR),  # the visit before its patient
])
def test_a_message_that_cannot_be_applied_names_its_field(text: str, field: str,
                                                          ack: AckCode) -> None:
    with pytest.raises(Hl7Error) as caught:
        parse_adt(decode(text.encode()))
    assert (caught.value.field, caught.value.ack) == (field, ack)


def test_a_merge_names_the_prior_patient() -> None:
    assert parse_adt(message(event="A40", extra="MRG|OLD7^^^HIS^PI")).prior_patient_id == "OLD7"


def test_escapes_are_undone_and_subcomponents_give_their_first() -> None:
    assert parse_adt(message(name="O\\T\\Brien^Ann&Marie")).patient["name"] == "Ann O&Brien"
