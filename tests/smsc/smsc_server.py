"""The SMSC the SMPP tests and bench/sms.py talk to: smpp.twisted3's SMPP 3.4 server.

Why this one: the server side of the protocol (PDU codec, bind with a twisted.cred
portal: a wrong password is answered ESME_RINVPASWD, bind counts, session states,
enquire_link, sequence windows, generic_nack) is smpp.twisted3's `SMPPServerFactory` /
`SMPPServerProtocol` (PyPI `smpp.twisted3`, the protocol Jasmin's SMPP server grew from),
which this project did not write. A carrier's SMSC behind it is what a test needs and is
what this file supplies as the factory's message handler: take a submit_sm and answer a
message id, send the delivery report (deliver_sm, receipt esm_class, receipted_message_id
and the appendix B text) after a short delay, and do what the control port says. Jasmin
(needs RabbitMQ, Redis and an upstream SMSC for reports) and Kannel's drive_smpp (a
load driver with fixed behaviour, no reports) did not fit.

Runs in its own virtualenv (`.venv-smsc`: Twisted pins clash with nothing of ours, but it
stays out of the project's environment); `tests/smsc/__init__.py` starts it. It prints
`READY smpp=PORT control=PORT` once both listen on 127.0.0.1. The control port takes one
JSON object per line and answers one: {"op": "mo", "sender", "text", "coding"},
{"op": "throttle", "count"}, {"op": "fail", "number"}, {"op": "malformed_dlr"},
{"op": "drop"} (cut every bound connection), {"op": "stats"}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import sys

from smpp.pdu import pdu_types as T
from smpp.pdu.operations import DeliverSM, SubmitSM
from smpp.twisted.config import SMPPServerConfig
from smpp.twisted.protocol import DataHandlerResponse
from smpp.twisted.server import IAuthenticatedSMPP, SMPPServerFactory
from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.cred.portal import IRealm, Portal
from twisted.internet import reactor
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineReceiver
from zope.interface import implementer

_CODINGS = {"gsm7": T.DataCodingDefault.SMSC_DEFAULT_ALPHABET,
            "latin1": T.DataCodingDefault.LATIN_1, "ucs2": T.DataCodingDefault.UCS2}


@implementer(IRealm)
class _Realm:
    def requestAvatar(self, avatar_id, _mind, *_interfaces):
        return IAuthenticatedSMPP, avatar_id, lambda: None


class Smsc:
    """The carrier's side: answers submits, sends reports, obeys the control port."""

    def __init__(self, system_id: str, dlr_delay: float) -> None:
        self.system_id = system_id
        self.dlr_delay = dlr_delay
        self.ids = itertools.count(1)
        self.throttle_left = 0
        self.failing: set[str] = set()
        self.submits = 0
        self.throttled = 0
        self.reports = 0
        self.acked = 0
        self.factory: SMPPServerFactory | None = None

    def handle(self, system_id, protocol, pdu):
        if not isinstance(pdu, SubmitSM):
            return T.CommandStatus.ESME_RINVCMDID
        if self.throttle_left > 0:
            self.throttle_left -= 1
            self.throttled += 1
            return T.CommandStatus.ESME_RTHROTTLED
        self.submits += 1
        message_id = f"{next(self.ids):08x}"
        if pdu.params.get("registered_delivery") is not None and \
                pdu.params["registered_delivery"].receipt != \
                T.RegisteredDeliveryReceipt.NO_SMSC_DELIVERY_RECEIPT_REQUESTED:
            number = pdu.params["destination_addr"].decode()
            stat = "UNDELIV" if number in self.failing else "DELIVRD"
            reactor.callLater(self.dlr_delay, self.report, protocol, pdu, message_id, stat)
        return DataHandlerResponse(status=T.CommandStatus.ESME_ROK, message_id=message_id)

    def report(self, protocol, submit, message_id: str, stat: str) -> None:
        stamp = dt.datetime.now().strftime("%y%m%d%H%M")
        err = "000" if stat == "DELIVRD" else "001"
        text = (f"id:{message_id} sub:001 dlvrd:{'001' if stat == 'DELIVRD' else '000'} "
                f"submit date:{stamp} done date:{stamp} stat:{stat} err:{err} text:")
        state = (T.MessageState.DELIVERED if stat == "DELIVRD"
                 else T.MessageState.UNDELIVERABLE)
        self.send(protocol, DeliverSM(
            source_addr=submit.params["destination_addr"],
            destination_addr=submit.params["source_addr"],
            esm_class=T.EsmClass(T.EsmClassMode.DEFAULT, T.EsmClassType.SMSC_DELIVERY_RECEIPT),
            receipted_message_id=message_id, message_state=state,
            short_message=text.encode()))

    def send(self, protocol, pdu) -> None:
        if protocol is None or not protocol.isBound():
            return
        self.reports += 1
        protocol.sendDataRequest(pdu).addCallbacks(self.acknowledged, lambda failure: None)

    def acknowledged(self, response) -> None:
        """The ESME's deliver_sm_resp matched the deliver_sm's sequence number."""
        self.acked += 1

    def any_binding(self):
        binds = self.factory.getBoundConnections(self.system_id) if self.factory else None
        return binds.getNextBindingForDelivery() if binds else None

    def control(self, order: dict) -> dict:
        op = order.get("op")
        if op == "mo":
            coding = _CODINGS[order.get("coding", "ucs2")]
            text = order["text"]
            body = (text.encode("utf-16-be") if coding is T.DataCodingDefault.UCS2
                    else text.encode("latin-1"))
            self.send(self.any_binding(), DeliverSM(
                source_addr=order["sender"], destination_addr=order.get("to", "10690"),
                esm_class=T.EsmClass(T.EsmClassMode.DEFAULT, T.EsmClassType.DEFAULT),
                data_coding=T.DataCoding(schemeData=coding), short_message=body))
        elif op == "throttle":
            self.throttle_left = int(order["count"])
        elif op == "fail":
            self.failing.add(order["number"])
        elif op == "malformed_dlr":  # a receipt an SMSC garbled: no id, a state nobody knows
            self.send(self.any_binding(), DeliverSM(
                source_addr="8613800000000", destination_addr="10690",
                esm_class=T.EsmClass(T.EsmClassMode.DEFAULT,
                                     T.EsmClassType.SMSC_DELIVERY_RECEIPT),
                short_message=b"garbled receipt stat:WHATEVER"))
        elif op == "drop":  # the carrier's link goes down under every bind
            binds = self.factory.getBoundConnections(self.system_id) if self.factory else None
            for protocol in list(binds or []):
                protocol.transport.abortConnection()
        elif op != "stats":
            return {"ok": False, "error": f"unknown op {op!r}"}
        return {"ok": True, "submits": self.submits, "throttled": self.throttled,
                "reports": self.reports, "acked": self.acked}


class _Control(LineReceiver):
    delimiter = b"\n"

    def __init__(self, smsc: Smsc) -> None:
        self.smsc = smsc

    def lineReceived(self, line: bytes) -> None:
        try:
            answer = self.smsc.control(json.loads(line))
        except (ValueError, KeyError) as exc:
            answer = {"ok": False, "error": str(exc)}
        self.sendLine(json.dumps(answer).encode())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--system-id", default="followup")
    parser.add_argument("--password", default="secret")
    parser.add_argument("--dlr-delay", type=float, default=0.05)
    args = parser.parse_args()
    smsc = Smsc(args.system_id, args.dlr_delay)
    # the factory hands the bind's system_id and password as str; the checker keeps bytes
    checker = InMemoryUsernamePasswordDatabaseDontUse()
    checker.users = {args.system_id: args.password}
    config = SMPPServerConfig(msgHandler=smsc.handle,
                              systems={args.system_id: {"max_bindings": 4}},
                              enquireLinkTimerSecs=30, inactivityTimerSecs=300)
    smsc.factory = SMPPServerFactory(config, auth_portal=Portal(_Realm(), [checker]))
    smpp_port = reactor.listenTCP(0, smsc.factory, interface="127.0.0.1")
    control_port = reactor.listenTCP(0, Factory.forProtocol(lambda: _Control(smsc)),
                                     interface="127.0.0.1")
    reactor.callWhenRunning(lambda: print(
        f"READY smpp={smpp_port.getHost().port} control={control_port.getHost().port}",
        flush=True))
    reactor.run()


if __name__ == "__main__":
    sys.exit(main())
