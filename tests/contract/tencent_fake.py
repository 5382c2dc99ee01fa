"""A local stand-in for the Tencent Cloud SMS API 3.0 (sms.tencentcloudapi.com, version
2021-01-11), driven by the real SDK in the tests.

Its answers are shaped after the public API documentation: the JSON envelope
`{"Response": {..., "RequestId": ...}}` and its `Error` form (Common Response Parameters),
the examples of SendSms (a `SendStatusSet` entry with SerialNo, Code "Ok", Message
"send success"), PullSmsSendStatus (SerialNo, ReportStatus SUCCESS/FAIL, Description
"DELIVRD") and PullSmsReplyStatus (PhoneNumber, ReplyContent), and the SendSms error codes
(`LimitExceeded.PhoneNumberThirtySecondLimit`, `InvalidParameterValue.IncorrectPhoneNumber`,
`FailedOperation.TemplateParamSetNotMatchApprovedTemplate`, ...). It checks each request's
TC3-HMAC-SHA256 signature with the published algorithm (Signature v3), so a wrong key is
refused as the real service refuses it (`AuthFailure.SignatureFailure`).

Each action is chosen by the `X-TC-Action` header, as the SDK sends it. Pulled items are
handed out once, as Tencent's queue does. Everything received is kept in `requests`.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from core.settings import SmsSettings

SECRET_ID = "AKIDtestonly0000000000000000000000"
SECRET_KEY = "test-only-secret-key-00000000000"
SDK_APP_ID = "1400006666"
SIGN_NAME = "示范医院"
# our template key -> (TemplateId, how many parameters the approved template has)
APPROVED = {"questionnaire_link": ("1110001", 1), "red_flag_notice": ("1110002", 1),
            "revisit_reminder": ("1110003", 0), "medication_reminder": ("1110004", 0)}
_MAINLAND_MOBILE = re.compile(r"\+861[3-9]\d{9}")


@dataclass
class Received:
    action: str
    headers: dict[str, str]
    params: dict[str, Any]


@dataclass
class FakeTencentSms:
    """The fake's state; `serve()` starts it on 127.0.0.1 and a free port."""

    requests: list[Received] = field(default_factory=list)
    statuses: deque[object] = field(default_factory=deque)
    replies: deque[object] = field(default_factory=deque)
    throttle_left: int = 0
    failing: set[str] = field(default_factory=set)
    pull_errors_left: int = 0
    _serials: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def serve(self) -> FakeTencentSms:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = fake.answer(dict(self.headers.items()), body)
                data = json.dumps({"Response": answer}, ensure_ascii=False).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- what a test tells it -----------------------------------------------------------

    def reply(self, phone: str, text: str) -> None:
        """A patient answers (as PullSmsReplyStatus lists it)."""
        self.replies.append({"ExtendCode": "", "CountryCode": "86",
                             "SubscriberNumber": phone.removeprefix("+86"),
                             "PhoneNumber": phone, "SignName": SIGN_NAME,
                             "ReplyContent": text, "ReplyTime": "2026-12-08 10:00:00",
                             "ReplyUnixTime": 1796709600})

    def sent(self) -> list[dict[str, Any]]:
        return [r.params for r in self.requests if r.action == "SendSms"]

    # -- the API ------------------------------------------------------------------------

    def answer(self, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        action = headers.get("X-TC-Action", "")
        params = json.loads(body or b"{}")
        with self._lock:
            self.requests.append(Received(action, headers, params))
            refused = self._authenticate(headers, body)
            if refused is not None:
                return refused
            if action == "SendSms":
                return self._send(params)
            if action in ("PullSmsSendStatus", "PullSmsReplyStatus"):
                if params.get("SmsSdkAppId") != SDK_APP_ID:
                    return _error("InvalidParameterValue.SdkAppIdNotExist",
                                  "SdkAppId does not exist")
                if self.pull_errors_left > 0:
                    self.pull_errors_left -= 1
                    return _error("InternalError.Timeout", "request timed out")
                queue = self.statuses if action == "PullSmsSendStatus" else self.replies
                items = [queue.popleft() for _ in range(min(len(queue), params["Limit"]))]
                return {f"{action}Set": items, "RequestId": str(uuid.uuid4())}
            return _error("InvalidAction", f"the action {action} is not found")

    def _authenticate(self, headers: dict[str, str], body: bytes) -> dict[str, Any] | None:
        match = re.fullmatch(r"TC3-HMAC-SHA256 Credential=([^/]+)/(\d{4}-\d{2}-\d{2})/sms/"
                             r"tc3_request, SignedHeaders=content-type;host, Signature=(\w+)",
                             headers.get("Authorization", ""))
        if match is None:
            return _error("AuthFailure.InvalidAuthorization", "Authorization is invalid")
        secret_id, date, signature = match.groups()
        if secret_id != SECRET_ID:
            return _error("AuthFailure.SecretIdNotFound", "the SecretId is not found")
        canonical = "\n".join(["POST", "/", "", f"content-type:{headers['Content-Type']}",
                               f"host:{headers['Host']}", "", "content-type;host",
                               hashlib.sha256(body).hexdigest()])
        to_sign = "\n".join(["TC3-HMAC-SHA256", headers["X-TC-Timestamp"],
                             f"{date}/sms/tc3_request",
                             hashlib.sha256(canonical.encode()).hexdigest()])
        key = ("TC3" + SECRET_KEY).encode()
        for part in (date, "sms", "tc3_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(
                hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), signature):
            return _error("AuthFailure.SignatureFailure",
                          "the provided credentials could not be validated")
        return None

    def _send(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("SmsSdkAppId") != SDK_APP_ID:
            return _error("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId does not exist")
        if params.get("SignName") != SIGN_NAME:
            return _error("FailedOperation.SignatureIncorrectOrUnapproved",
                          "the signature is not approved")
        approved = {tid: count for tid, count in APPROVED.values()}
        if params.get("TemplateId") not in approved:
            return _error("FailedOperation.TemplateIncorrectOrUnapproved",
                          "the template is not approved")
        if len(params.get("TemplateParamSet") or []) != approved[params["TemplateId"]]:
            return _error("FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
                          "the parameters do not match the approved template")
        statuses = []
        for phone in params["PhoneNumberSet"]:
            entry = {"PhoneNumber": phone, "SessionContext": params.get("SessionContext", ""),
                     "IsoCode": "CN", "SerialNo": "", "Fee": 0}
            if not _MAINLAND_MOBILE.fullmatch(phone):
                entry |= {"Code": "InvalidParameterValue.IncorrectPhoneNumber",
                          "Message": "incorrect phone number format", "IsoCode": "DEF"}
            elif self.throttle_left > 0:
                self.throttle_left -= 1
                entry |= {"Code": "LimitExceeded.PhoneNumberThirtySecondLimit",
                          "Message": "the number reached its limit of one message in 30 s"}
            else:
                serial = f"5000:{next(self._serials):028d}"
                entry |= {"Code": "Ok", "Message": "send success", "SerialNo": serial,
                          "Fee": 1}
                failed = phone in self.failing
                self.statuses.append({
                    "UserReceiveTime": "2026-12-08 10:00:01", "CountryCode": "86",
                    "SubscriberNumber": phone.removeprefix("+86"), "PhoneNumber": phone,
                    "SerialNo": serial, "ReportStatus": "FAIL" if failed else "SUCCESS",
                    "Description": "MK:0001" if failed else "DELIVRD",
                    "SessionContext": params.get("SessionContext", "")})
            statuses.append(entry)
        return {"SendStatusSet": statuses, "RequestId": str(uuid.uuid4())}


def settings(fake: FakeTencentSms, secret_key: str = SECRET_KEY,
             endpoint: str | None = None) -> SmsSettings:
    """`[sms]` for a gateway that talks to `fake`, every template approved."""
    return SmsSettings(gateway="tencent", tencent_secret_id=SECRET_ID,
                       tencent_secret_key=secret_key, tencent_sdk_app_id=SDK_APP_ID,
                       tencent_sign_name=SIGN_NAME, tencent_endpoint=endpoint or fake.endpoint,
                       tencent_templates={key: tid for key, (tid, _) in APPROVED.items()})


def _error(code: str, message: str) -> dict[str, Any]:
    return {"Error": {"Code": code, "Message": message}, "RequestId": str(uuid.uuid4())}
