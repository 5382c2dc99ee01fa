"""Render `asterisk-conf/*.j2` into Asterisk configuration files from the settings.

Every value is validated before it reaches a template: Asterisk config files are
line-oriented and `;` starts a comment, so a newline or a semicolon in a secret, a name or
a path would silently change the configuration. Names, hosts, paths and numbers must match
strict patterns; secrets may hold anything printable except `;`, CR, LF and surrounding
blanks. A bad value raises `ConfigError` naming the setting.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import jinja2

from core.domain import is_dialable
from core.errors import ConfigError
from core.settings import AmdSettings, AsteriskServerSettings, AsteriskSettings

TEMPLATES = ("pjsip.conf", "extensions.conf", "manager.conf", "queues.conf", "cdr.conf",
             "cdr_manager.conf", "amd.conf", "asterisk.conf", "modules.conf", "logger.conf",
             "rtp.conf")
DEFAULT_TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "asterisk-conf"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:-]{0,252}$")
_BIND = re.compile(r"^[A-Za-z0-9.:\[\]-]+:[0-9]{1,5}$")
_PERMIT = re.compile(r"^[0-9.]+/[0-9.]+$")
_PATH = re.compile(r"^/[A-Za-z0-9_./-]{1,250}$")
_SIP_URI = re.compile(r"^sips?:[A-Za-z0-9_.+-]+@[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


@dataclass(frozen=True, slots=True)
class TrunkConf:
    """One trunk's checked values (pjsip.conf)."""

    name: str
    host: str
    port: int
    username: str
    secret: str
    caller_id: str
    qualify_s: int


@dataclass(frozen=True, slots=True)
class AsteriskConfValues:
    """Checked values, the only thing templates see."""

    ami_user: str
    ami_secret: str
    ami_bind: str
    ami_port: int
    ami_permit: str
    agi_host: str
    agi_port: int
    sip_bind: str
    system_name: str  # asterisk.conf systemname: uniqueids differ between servers
    trunks: tuple[TrunkConf, ...]
    nurse_queue: str
    agent_queue: str
    nurses: tuple[str, ...]
    agents: tuple[str, ...]
    agent_secret: str
    recording_dir: str
    clip_dir: str
    originate_timeout_s: int
    queue_timeout_s: int
    amd: AmdSettings  # numbers only (range-checked by the settings)
    rtp_start: int
    rtp_end: int
    phone_contacts: dict[str, str]  # extension -> static contact URI


def _check(key: str, value: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.fullmatch(value):
        raise ConfigError(f"asterisk.{key}", f"must be {what} (got {value!r})")
    return value


def _secret(key: str, value: str, required: bool) -> str:
    if required and not value:
        raise ConfigError(f"asterisk.{key}", "must be set to render the Asterisk configuration")
    if any(c in value for c in ";\r\n\x00") or value != value.strip() \
            or not value.isprintable():
        raise ConfigError(f"asterisk.{key}", "may not hold ';', line breaks, control "
                                             "characters or surrounding blanks")
    return value


_NAME_WHAT = "a name of letters, digits, '_', '.', '-'"
_HOST_WHAT = "a host name or IP address"


def _trunks(s: AsteriskSettings) -> tuple[TrunkConf, ...]:
    """The trunks, checked; their keys are named as the settings name them."""
    out = []
    for i, t in enumerate(s.trunk_list(1, 1.0)):
        key = f"trunks.{i}." if s.trunks else "trunk_"
        _check(f"{key}name" if s.trunks else "trunk", t.name, _NAME, _NAME_WHAT)
        if t.username:
            _check(f"{key}username", t.username, _NAME, _NAME_WHAT)
        out.append(TrunkConf(
            name=t.name, host=_check(f"{key}host", t.host, _HOST, _HOST_WHAT), port=t.port,
            username=t.username,
            secret=_secret(f"{key}secret", t.secret.get_secret_value(),
                           required=bool(t.username)),
            caller_id=t.caller_id or s.caller_id, qualify_s=t.qualify_s))
    return tuple(out)


def server_names(s: AsteriskSettings) -> list[str]:
    """The servers `render` writes a configuration for (one: the flat settings)."""
    return [sv.name for sv in s.servers]


def validate(s: AsteriskSettings, server: str | None = None) -> AsteriskConfValues:
    """Check every value the templates use, for `server` (one of `asterisk.servers`; None
    for the one server the flat settings describe). Raises `ConfigError`."""
    name, host = _NAME_WHAT, _HOST_WHAT
    sv, key = _server(s, server)
    for k in ("ami_user", "nurse_queue", "agent_queue"):
        _check(k, getattr(s, k), _NAME, name)
    for i, ext in enumerate(s.nurses):
        _check(f"nurses.{i}", ext, _NAME, name)
    for i, ext in enumerate(s.agents):
        _check(f"agents.{i}", ext, _NAME, name)
    if not s.agents and not s.nurses:
        raise ConfigError("asterisk.agents", "name at least one agent or nurse extension")
    if s.caller_id and not is_dialable(s.caller_id):
        raise ConfigError("asterisk.caller_id", "must be a phone number (digits, optional +) "
                                                f"(got {s.caller_id!r})")
    for ext, uri in s.phone_contacts.items():
        if ext not in (*s.agents, *s.nurses):
            raise ConfigError(f"asterisk.phone_contacts.{ext}",
                              "is not one of the agents' or nurses' extensions")
        _check(f"phone_contacts.{ext}", uri, _SIP_URI, "a SIP URI such as "
               "sip:2001@10.0.0.21:5060")
    if sv.rtp_end - sv.rtp_start < 2:
        raise ConfigError(f"asterisk.{key}rtp_end", "must be at least 2 above rtp_start")
    return AsteriskConfValues(
        ami_user=_check(f"{key}ami_user", sv.ami_user, _NAME, name),
        ami_secret=_secret(f"{key}ami_secret", sv.ami_secret.get_secret_value(),
                           required=True),
        ami_permit=_check("ami_permit", s.ami_permit, _PERMIT, "address/netmask"),
        ami_bind=_check(f"{key}ami_host", sv.ami_host, _HOST, host),
        ami_port=sv.ami_port,
        agi_host=_check("agi_host", s.agi_host, _HOST, host),
        agi_port=s.agi_port,
        sip_bind=_check(f"{key}sip_bind", sv.sip_bind, _BIND, "host:port"),
        system_name=sv.name if server is not None else "",
        trunks=_trunks(s),
        nurse_queue=s.nurse_queue,
        agent_queue=s.agent_queue,
        nurses=tuple(s.nurses),
        agents=tuple(s.agents),
        agent_secret=_secret("agent_secret", s.agent_secret.get_secret_value(),
                             required=True),
        recording_dir=_check("recording_dir", s.recording_dir, _PATH, "an absolute path"),
        clip_dir=_check("clip_dir", s.clip_dir, _PATH, "an absolute path"),
        originate_timeout_s=s.originate_timeout_s,
        queue_timeout_s=s.queue_timeout_s,
        amd=s.amd,
        rtp_start=sv.rtp_start,
        rtp_end=sv.rtp_end,
        phone_contacts=dict(s.phone_contacts),
    )


def _server(s: AsteriskSettings, server: str | None
            ) -> tuple[AsteriskServerSettings, str]:
    """The server's settings and the prefix its keys are named with."""
    if server is None:
        return s.server_list(1)[0], ""
    for i, sv in enumerate(s.servers):
        if sv.name == server:
            return sv, f"servers.{i}."
    raise ConfigError("asterisk.servers", f"no server named {server!r}")


def render(values: AsteriskConfValues, template_dir: Path = DEFAULT_TEMPLATE_DIR
           ) -> dict[str, str]:
    """The text of every configuration file, by file name."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir)),
                             undefined=jinja2.StrictUndefined, autoescape=False,  # not HTML
                             keep_trailing_newline=True, trim_blocks=True,
                             lstrip_blocks=True)
    return {name: env.get_template(f"{name}.j2").render(v=values) for name in TEMPLATES}


def write(files: dict[str, str], out_dir: Path) -> list[Path]:
    """Write the files (0640: they hold secrets). Returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = out_dir / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(path, 0o640)
        written.append(path)
    return written
