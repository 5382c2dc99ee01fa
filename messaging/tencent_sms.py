"""The Tencent Cloud SMS adapter (`[sms] gateway = "tencent"`; the `cloud-sms` extra).

Why Tencent Cloud SMS and not Aliyun SMS: both are used by Chinese hospitals and both work
by approved sign and template codes, and both have a maintained official Python SDK on
PyPI. Tencent's is one small package per product (`tencentcloud-sdk-python-sms` over
`tencentcloud-sdk-python-common`, which needs only `requests`), and its API lets a server
pull delivery reports and replies as a queue (`PullSmsSendStatus`, `PullSmsReplyStatus`),
so the engine needs no address reachable from the internet and no other service. Aliyun
pushes reports and replies by HTTP callback or through its message queue service (MNS, one
more service to run and reach); its query API (`QuerySendDetails`) looks up one number on
one day, and its SDK comes as several packages over its Tea runtime.

The template-code model: Tencent sends the text it has on file for an approved template
(TemplateId), filled with positional parameters (TemplateParamSet), after the approved sign
(SignName, shown as 【sign】). So this adapter does not send `OutgoingSms.body`: it sends the
TemplateId that `[sms] tencent_templates` maps our template key to, and `OutgoingSms.params`
(our template's values, in the order its text names them, {hospital} left out: the sign
carries the name). The hospital has its templates approved with the same placeholders in
that order, e.g. questionnaire_link: "您好，邀请您填写一份简短问卷：{1} 回复TD退订". A message
whose template has no TemplateId, or whose body could not be read back as its template's
text, is refused PERMANENT with the reason; it never raises.

Calls go through the SDK's client (TC3-HMAC-SHA256 signing, endpoint, the error envelope),
blocking, in a small pool of worker threads, never on the event loop; each worker thread has
its own client. The SDK's generic `call_json` is used rather than its typed models: a typed
response fails whole when one item of a pulled batch is not an object, and we read each
item ourselves at the boundary into `SubmitResult`, `DeliveryReport` and `InboundSms`.

Submit: `SendSms` to one number. "Ok" -> ACCEPTED with the SerialNo as the only part id
(Tencent bills a long message as several but reports it as one). Rate and quota limits,
Tencent's internal errors, account states that a person fixes (balance, arrears, a refused
key: like a refused SMPP bind) and transport failures are TEMPORARY; anything else (an
invalid number, an unapproved sign or template, parameters that do not fit) is PERMANENT
with Tencent's code and message. An answer that cannot be read is TEMPORARY: the message
may then go twice, never be lost (as the sender promises).

Reports and replies: `start` runs two pollers, `PullSmsSendStatus` and `PullSmsReplyStatus`
(Tencent enables both for an SMS app on request), every `poll_s`, at once again while a
pull comes back full. Tencent hands each item out once: a status becomes a `DeliveryReport`
keyed by its SerialNo (SUCCESS -> DELIVERED; FAIL -> UNDELIVERABLE, its Description as the
error code, cut to the receipt's 16 characters; the whole item kept in `raw`); a reply
becomes an `InboundSms`. An item that cannot be read becomes a `DeliveryReport` with no
state and the item's JSON, kept by the sender, never a crash. A failed pull is logged and
tried again with exponential backoff; `close` stops the pollers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111.sms_client import SmsClient

from core.settings import SmsSettings
from messaging.gateway import (
    DeliveryReport,
    DeliveryState,
    GatewayEvents,
    InboundSms,
    OutgoingSms,
    SubmitResult,
    SubmitStatus,
)

log = logging.getLogger(__name__)

PULL_LIMIT = 100  # the most either pull hands out at once (the API's maximum)
ERROR_MAX = 16  # SmsReceipt.error
ID_MAX = 64  # SmsReceipt.gateway_message_id: a longer "SerialNo" is not one of ours
_REPORT_STATES = {"SUCCESS": DeliveryState.DELIVERED, "FAIL": DeliveryState.UNDELIVERABLE}
# Tencent's codes that mean "not now" (error codes of SendSms and the common ones): the
# sender retries them later. Everything else is a refusal for good.
_TEMPORARY_PREFIXES = ("LimitExceeded.", "RequestLimitExceeded", "InternalError",
                       "AuthFailure")
_TEMPORARY_CODES = frozenset({
    "ClientNetworkError", "ServerNetworkError",  # the SDK's words for a transport failure
    "ServiceUnavailable",
    "FailedOperation.InsufficientBalanceInSmsPackage",
    "UnauthorizedOperation.ServiceSuspendDueToArrears",
    "UnauthorizedOperation.RequestIpNotInWhitelist",
    "FailedOperation.MarketingSendTimeConstraint",
})
_PERMANENT_LIMITS = frozenset({  # "LimitExceeded." codes that no wait will change
    "LimitExceeded.AppCountryOrRegionInBlacklist", "LimitExceeded.PhoneNumberCountLimit",
})


def submit_status(code: str) -> SubmitStatus:
    """Whether Tencent's error `code` for a send is worth trying again."""
    if code in _TEMPORARY_CODES or (code.startswith(_TEMPORARY_PREFIXES)
                                    and code not in _PERMANENT_LIMITS):
        return SubmitStatus.TEMPORARY
    return SubmitStatus.PERMANENT


class _Unreadable(Exception):
    """An answer that is not the API's JSON envelope."""


def _raw(item: object) -> str:
    return json.dumps(item, ensure_ascii=False, sort_keys=True, default=str)


def read_status(item: object) -> DeliveryReport:
    """One item of `PullSmsSendStatusSet`."""
    raw = _raw(item)
    if not isinstance(item, dict):
        return DeliveryReport(gateway_message_id=None, state=None, error=None, raw=raw)
    serial = item.get("SerialNo")
    serial = serial if isinstance(serial, str) and 0 < len(serial) <= ID_MAX else None
    status = item.get("ReportStatus")
    state = _REPORT_STATES.get(status) if isinstance(status, str) else None
    if serial is None or state is None:
        return DeliveryReport(gateway_message_id=serial, state=None, error=None, raw=raw)
    description = item.get("Description")
    error = (description[:ERROR_MAX] if state is DeliveryState.UNDELIVERABLE
             and isinstance(description, str) and description else None)
    return DeliveryReport(gateway_message_id=serial, state=state, error=error, raw=raw)


def read_reply(item: object) -> InboundSms | DeliveryReport:
    """One item of `PullSmsReplyStatusSet`: the patient's message, or an unreadable item
    kept as a report with no state (as the SMPP adapter keeps an unreadable deliver_sm)."""
    raw = _raw(item)
    if isinstance(item, dict):
        sender, body = item.get("PhoneNumber"), item.get("ReplyContent")
        if isinstance(sender, str) and sender and isinstance(body, str):
            return InboundSms(sender=sender, body=body, raw=raw)
    return DeliveryReport(gateway_message_id=None, state=None, error=None, raw=raw)


def read_send_answer(response: dict[str, Any], to: str) -> SubmitResult:
    """The `SendStatusSet` entry for `to` in a SendSms answer."""
    entries = response.get("SendStatusSet")
    if not isinstance(entries, list) or not entries:
        raise _Unreadable("no SendStatusSet")
    entry = next((e for e in entries if isinstance(e, dict) and e.get("PhoneNumber") == to),
                 entries[0])
    if not isinstance(entry, dict) or not isinstance(entry.get("Code"), str):
        raise _Unreadable(f"SendStatusSet entry {_raw(entry)}")
    code, serial = entry["Code"], entry.get("SerialNo")
    if code == "Ok":
        if not isinstance(serial, str) or not serial:
            raise _Unreadable(f"accepted with no SerialNo: {_raw(entry)}")
        return SubmitResult(SubmitStatus.ACCEPTED, part_ids=(serial,))
    return SubmitResult(submit_status(code), detail=f"{code}: {entry.get('Message') or ''}")


def _http_profile(endpoint: str, timeout_s: float) -> Any:
    scheme, _, host = endpoint.rpartition("://")
    return HttpProfile(protocol=scheme or "https", endpoint=host, reqTimeout=timeout_s)


class TencentSmsGateway:
    """Tencent Cloud SMS through its official SDK (see the module docstring)."""

    def __init__(self, settings: SmsSettings, *, name: str = "tencent", poll_s: float = 5.0,
                 timeout_s: float = 10.0, backoff_s: tuple[float, float] = (1.0, 60.0),
                 workers: int = 8) -> None:
        self._settings = settings
        self._name = name
        self._poll_s = poll_s
        self._timeout_s = timeout_s
        self._backoff_s = backoff_s
        self._executor = ThreadPoolExecutor(max_workers=workers,
                                            thread_name_prefix=f"sms-{name}")
        self._local = threading.local()
        self._events: GatewayEvents | None = None
        self._pollers: list[asyncio.Task[None]] = []
        self._closed = False

    @classmethod
    def from_settings(cls, settings: SmsSettings) -> TencentSmsGateway:
        """The gateway `[sms]` describes, with the default timers."""
        return cls(settings)

    @property
    def name(self) -> str:
        return self._name

    async def start(self, events: GatewayEvents) -> None:
        """Start pulling delivery reports and replies in the background; never raises for
        an unreachable API (the pollers keep trying)."""
        self._events = events
        self._pollers = [
            asyncio.create_task(self._poll("PullSmsSendStatus", "PullSmsSendStatusSet",
                                           read_status), name=f"sms-{self._name}-reports"),
            asyncio.create_task(self._poll("PullSmsReplyStatus", "PullSmsReplyStatusSet",
                                           read_reply), name=f"sms-{self._name}-replies"),
        ]

    async def close(self) -> None:
        self._closed = True
        for task in self._pollers:
            task.cancel()
        for task in self._pollers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._pollers = []
        self._events = None
        # a call still in a worker ends by its own timeout; nothing waits for it
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, sms: OutgoingSms) -> SubmitResult:
        template_id = self._settings.tencent_templates.get(sms.template)
        if not template_id:
            return SubmitResult(SubmitStatus.PERMANENT, detail=(
                f"no Tencent TemplateId for template {sms.template!r} "
                "([sms] tencent_templates)"))
        if sms.params is None:
            return SubmitResult(SubmitStatus.PERMANENT, detail=(
                f"the body does not read as template {sms.template!r}: its parameters are "
                "unknown"))
        if self._closed:
            return SubmitResult(SubmitStatus.TEMPORARY, detail="gateway closed")
        settings = self._settings
        try:
            response = await self._call("SendSms", {
                "PhoneNumberSet": [sms.to],
                "SmsSdkAppId": settings.tencent_sdk_app_id,
                "SignName": settings.tencent_sign_name,
                "TemplateId": template_id,
                "TemplateParamSet": list(sms.params),
                "SessionContext": str(sms.reference),  # echoed in the pulled status
            })
            return read_send_answer(response, sms.to)
        except TencentCloudSDKException as exc:
            code = str(exc.code or "ClientError")
            return SubmitResult(submit_status(code), detail=f"{code}: {exc.message or ''}")
        except _Unreadable as exc:
            log.warning("Tencent SMS %s: unreadable SendSms answer for message %s: %s",
                        self._name, sms.reference, exc)
            return SubmitResult(SubmitStatus.TEMPORARY, detail=f"unreadable answer: {exc}")

    # -- calls ----------------------------------------------------------------------------

    async def _call(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        """The `Response` object of `action`, called in a worker thread. Raises
        `TencentCloudSDKException` for an error answer or a transport failure and
        `_Unreadable` for an answer that is not the API's JSON."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call_blocking, action, params)

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            s = self._settings
            client = SmsClient(
                Credential(s.tencent_secret_id.get_secret_value(),
                           s.tencent_secret_key.get_secret_value()),
                s.tencent_region,
                ClientProfile(httpProfile=_http_profile(s.tencent_endpoint, self._timeout_s)))
            self._local.client = client
        return client

    def _call_blocking(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            answer = self._client().call_json(action, params)
        except (ValueError, LookupError, TypeError) as exc:  # the SDK reads JSON unguarded
            raise _Unreadable(f"{type(exc).__name__}: {exc}") from exc
        response = answer.get("Response") if isinstance(answer, dict) else None
        if not isinstance(response, dict):
            raise _Unreadable("no Response object")
        error = response.get("Error")
        if isinstance(error, dict):  # an error the SDK let through (another Content-Type)
            raise TencentCloudSDKException(error.get("Code"), error.get("Message"),
                                           response.get("RequestId"))
        return response

    # -- what arrives -----------------------------------------------------------------------

    async def _poll(self, action: str, key: str,
                    read: Callable[[object], DeliveryReport | InboundSms]) -> None:
        failures = 0
        while True:
            try:
                response = await self._call(action, {
                    "SmsSdkAppId": self._settings.tencent_sdk_app_id, "Limit": PULL_LIMIT})
                items = response.get(key) or []
                if not isinstance(items, list):
                    raise _Unreadable(f"{key} is not a list")
            except (TencentCloudSDKException, _Unreadable) as exc:
                failures += 1
                low, high = self._backoff_s
                wait = min(high, low * 2 ** (failures - 1))
                log.warning("Tencent SMS %s: %s failed (%s); again in %.0f s", self._name,
                            action, exc, wait)
                await asyncio.sleep(wait)
                continue
            failures = 0
            for item in items:
                self._hand_over(read(item))
            if len(items) < PULL_LIMIT:
                await asyncio.sleep(self._poll_s)
            else:
                await asyncio.sleep(0)  # more are waiting: pull again at once

    def _hand_over(self, item: DeliveryReport | InboundSms) -> None:
        events = self._events
        if events is None:
            return
        if isinstance(item, DeliveryReport) and item.state is None:
            log.warning("Tencent SMS %s: an item that could not be read: %s", self._name,
                        item.raw)
        try:
            if isinstance(item, DeliveryReport):
                events.delivery_report(item)
            else:
                events.inbound(item)
        except Exception:  # a subscriber's fault must not stop the poller
            log.exception("Tencent SMS %s: a receiver of %r failed", self._name, item)
