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

from core.errors import ConfigError
from core.settings import AmdSettings, AsteriskSettings

TEMPLATES = ("pjsip.conf", "extensions.conf", "manager.conf", "queues.conf", "cdr.conf",
             "cdr_manager.conf", "amd.conf", "asterisk.conf", "modules.conf", "logger.conf",
             "rtp.conf")
DEFAULT_TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "asterisk-conf"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:-]{0,252}$")
_BIND = re.compile(r"^[A-Za-z0-9.:\[\]-]+:[0-9]{1,5}$")
_PERMIT = re.compile(r"^[0-9.]+/[0-9.]+$")
_PATH = re.compile(r"^/[A-Za-z0-9_./-]{1,250}$")
_NUMBER = re.compile(r"^\+?[0-9]{2,20}$")
_SIP_URI = re.compile(r"^sips?:[A-Za-z0-9_.+-]+@[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


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
    trunk: str
    trunk_host: str
    trunk_port: int
    trunk_username: str
    trunk_secret: str
    caller_id: str
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


def validate(s: AsteriskSettings) -> AsteriskConfValues:
    """Check every value the templates use. Raises `ConfigError`."""
    name, host = "a name of letters, digits, '_', '.', '-'", "a host name or IP address"
    for key in ("ami_user", "trunk", "nurse_queue", "agent_queue"):
        _check(key, getattr(s, key), _NAME, name)
    if s.trunk_username:
        _check("trunk_username", s.trunk_username, _NAME, name)
    for i, ext in enumerate(s.nurses):
        _check(f"nurses.{i}", ext, _NAME, name)
    for i, ext in enumerate(s.agents):
        _check(f"agents.{i}", ext, _NAME, name)
    if not s.agents and not s.nurses:
        raise ConfigError("asterisk.agents", "name at least one agent or nurse extension")
    if s.caller_id:
        _check("caller_id", s.caller_id, _NUMBER, "a phone number (digits, optional +)")
    if s.rtp_end - s.rtp_start < 2:
        raise ConfigError("asterisk.rtp_end", "must be at least 2 above rtp_start")
    for ext, uri in s.phone_contacts.items():
        if ext not in (*s.agents, *s.nurses):
            raise ConfigError(f"asterisk.phone_contacts.{ext}",
                              "is not one of the agents' or nurses' extensions")
        _check(f"phone_contacts.{ext}", uri, _SIP_URI, "a SIP URI such as "
               "sip:2001@10.0.0.21:5060")
    return AsteriskConfValues(
        ami_user=s.ami_user,
        ami_secret=_secret("ami_secret", s.ami_secret.get_secret_value(), required=True),
        ami_permit=_check("ami_permit", s.ami_permit, _PERMIT, "address/netmask"),
        ami_bind=_check("ami_host", s.ami_host, _HOST, host),
        ami_port=s.ami_port,
        agi_host=_check("agi_host", s.agi_host, _HOST, host),
        agi_port=s.agi_port,
        sip_bind=_check("sip_bind", s.sip_bind, _BIND, "host:port"),
        trunk=s.trunk,
        trunk_host=_check("trunk_host", s.trunk_host, _HOST, host),
        trunk_port=s.trunk_port,
        trunk_username=s.trunk_username,
        trunk_secret=_secret("trunk_secret", s.trunk_secret.get_secret_value(),
                             required=bool(s.trunk_username)),
        caller_id=s.caller_id,
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
        rtp_start=s.rtp_start,
        rtp_end=s.rtp_end,
        phone_contacts=dict(s.phone_contacts),
    )


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
