"""SMS wiring: the gateway the settings name, the sender, the link key, and the triggers.

`serve` is the `sms` service of `followup run`: the sender drains the queue through the
gateway while the triggers (links after failed calls, red-flag notices) run every
`TRIGGER_EVERY`. The links' signing key is `[patient_web] secret_key`, else a key file in
the data folder made once, so `followup run` and `followup patient-web` agree on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets

from core.errors import ConfigError
from core.sms import SmsPolicy
from engine.app import App
from messaging.gateway import SmsGateway
from messaging.sender import SenderOptions, SmsSender
from messaging.triggers import LinkSettings, links_after_failed_calls, red_flag_notices

log = logging.getLogger(__name__)
TRIGGER_EVERY = dt.timedelta(minutes=1)
LOOK_BACK = dt.timedelta(days=2)  # how far back a trigger looks for what it missed
KEY_FILE = "patient-web.key"


def link_key(app: App) -> bytes:
    """The key that signs the questionnaire links' tokens: `[patient_web] secret_key` (at
    least 32 characters; set the same on every machine when the questionnaire is served
    from another one), else a key made once in the data folder. Raises ConfigError for a
    key too short to trust."""
    configured = app.settings.patient_web.secret_key.get_secret_value()
    if configured:
        if len(configured) < 32:
            raise ConfigError("patient_web.secret_key", "must have at least 32 characters: "
                              "it signs the questionnaire links")
        return configured.encode()
    path = app.data_dir / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()


def policy(app: App) -> SmsPolicy:
    s = app.settings
    return SmsPolicy(window=SmsPolicy.parse_window(s.sms.window), daily_cap=s.sms.daily_cap,
                     hospital={"zh-CN": s.hospital.name, "en": s.hospital.name_en})


def link_settings(app: App) -> LinkSettings:
    s = app.settings
    return LinkSettings(key=link_key(app), public_url=s.patient_web.public_url,
                        valid_for=dt.timedelta(hours=s.sms.link_hours))


def gateway(app: App) -> SmsGateway:
    """The gateway `[sms] gateway` names. Raises `ConfigError` when it needs an extra that
    is not installed."""
    s = app.settings.sms
    if s.gateway == "smpp":
        from messaging.smpp import SmppGateway

        return SmppGateway.from_settings(s)
    if s.gateway == "tencent":
        try:
            from messaging.tencent_sms import TencentSmsGateway
        except ImportError as exc:
            raise ConfigError("sms.gateway", "\"tencent\" needs the Tencent Cloud SDK: "
                              "pip install '.[cloud-sms]'") from exc
        return TencentSmsGateway.from_settings(s)
    from messaging.sim import SimGateway

    return SimGateway()


def sender(app: App, gw: SmsGateway) -> SmsSender:
    s = app.settings
    return SmsSender(app.db, gw, app.clock, policy(app), app.audit, SenderOptions(
        max_per_second=s.sms.max_per_second, retry=dt.timedelta(seconds=s.sms.retry_s),
        max_tries=s.sms.max_tries, region=s.hospital.default_region),
        s.tickets.response_times())


def run_triggers(app: App) -> tuple[int, int]:
    """Queue what the triggers find; returns (links, red-flag notices)."""
    now = app.clock.now()
    with app.db.session() as session:
        links = 0
        if app.settings.sms.link_after_failed_calls:
            links = links_after_failed_calls(session, policy(app), link_settings(app), now,
                                             LOOK_BACK)
        notices = red_flag_notices(session, policy(app), now, LOOK_BACK)
    return links, notices


async def serve(app: App, stop: asyncio.Event) -> str:
    """Send until `stop`; returns a one-line summary."""
    sms = sender(app, gateway(app))
    written = 0

    async def triggers() -> None:
        nonlocal written
        while not stop.is_set():
            links, notices = await app.db.call(run_triggers, app)
            written += links + notices
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TRIGGER_EVERY.total_seconds())

    task = asyncio.create_task(triggers())
    try:
        await sms.run(stop)
    finally:
        task.cancel()
    return f"{written} messages queued by the triggers"
