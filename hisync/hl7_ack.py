"""The acknowledgement an ADT message gets: MSH + MSA (+ ERR naming the field), encoded in
the message's own character set.

Built from the message's own MSH, as HL7's original-mode acknowledgement is (sender and
receiver swapped, the trigger event copied, processing id and version kept, MSA-2 the
control id); python-hl7's `create_ack` does the same through its object tree at a quarter
of a message's cost here. A message that could not be parsed still gets an answer, so a
sender is never left waiting on a message this side has kept.
"""

from __future__ import annotations

import datetime as dt
import uuid

import hl7

from hisync.hl7_adt import CHARSETS, AckCode, Hl7Error

# HL7 table 0357 (message error condition codes)
_REQUIRED_MISSING = "101"
_TABLE_VALUE_NOT_FOUND = "103"
_UNSUPPORTED = "200"
_APPLICATION_ERROR = "207"


def _err_segment(err: Hl7Error) -> str:
    """ERR (v2.5): location (segment^1^field), condition code, severity E, user message."""
    segment, _, field = err.field.partition("-")
    code = _UNSUPPORTED if err.ack is AckCode.REJECT else \
        _REQUIRED_MISSING if "no " in err.detail or "empty" in err.detail else \
        _TABLE_VALUE_NOT_FOUND if "table" in err.detail or "unknown" in err.detail else \
        _APPLICATION_ERROR
    detail = "".join(ch if ch not in "|^~\\&\r\n" else " " for ch in err.detail)[:200]
    return f"ERR||{segment}^1^{field}|{code}^^HL70357|E||||{detail}"


def ack_for(message: hl7.Message | None, code: AckCode, err: Hl7Error | None) -> bytes:
    """The ACK for `message` (None: it could not be parsed; a minimal ACK then)."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    ack_id = uuid.uuid4().hex[:20]
    charset = ""
    if message is not None:
        msh = [str(f) for f in message.segment("MSH")]  # msh[n] is MSH-n
        msh += [""] * (19 - len(msh))
        sep, enc = msh[1], msh[2]
        trigger = msh[9].split(enc[:1])[1] if enc[:1] in msh[9] else ""
        charset = msh[18]
        fields = ["MSH", enc, msh[5], msh[6], msh[3], msh[4], stamp, "",
                  f"ACK{enc[:1]}{trigger}{enc[:1]}ACK", ack_id, msh[11] or "P",
                  msh[12] or "2.5", "", "", "", "", "", charset]
        ack = sep.join(fields).rstrip(sep) + f"\rMSA{sep}{code.value}{sep}{msh[10]}"
    else:
        ack = (f"MSH|^~\\&|FOLLOWUP||||{stamp}||ACK|{ack_id}|P|2.5\r"
               f"MSA|{code.value}|")
    if err is not None:
        ack = f"{ack}\r{_err_segment(err)}"
    codec = CHARSETS.get(charset.split("~")[0].strip().upper(), "utf-8")
    return ack.encode(codec, "replace")
