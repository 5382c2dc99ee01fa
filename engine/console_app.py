"""Build the web console from the settings: what the console may not build itself
(script and rule validation, click-to-call) is made here and passed in."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette

from console.definitions import DefinitionFile
from console.deps import ConsoleDeps
from console.questions import IndexItem
from console.web import create_app
from core.calling_window import CallingRules
from core.enums import QuestionKind
from core.errors import FileValidationError
from core.settings import Settings
from dialer.asterisk.ami import AmiConfig
from dialer.asterisk.click_to_call import AsteriskClickToCall
from dialer.trunks import Trunk
from engine.app import App
from engine.dialing import recording_store

if TYPE_CHECKING:
    from ivr.script_model import Script

log = logging.getLogger(__name__)
MAX_SHOWN = 200_000  # characters of one definition file shown in the viewer


class EngineDefinitions:
    """Every script and rule file, each validated by its real loader."""

    def __init__(self, scripts_dir: Path, rule_paths: list[str], calling_hours: str) -> None:
        self._scripts_dir = scripts_dir
        self._rule_paths = rule_paths
        self._calling_hours = calling_hours

    def definitions(self) -> list[DefinitionFile]:
        from followup_rules.loader import load_rule_set, rule_files
        from ivr.catalog import script_files
        from ivr.script_loader import load_script

        out: list[DefinitionFile] = []
        for path in script_files(self._scripts_dir):
            problem = ""
            try:
                load_script(path)
            except FileValidationError as exc:
                problem = exc.message
            out.append(DefinitionFile("script", str(path.relative_to(self._scripts_dir)),
                                      _read(path), problem))
        try:
            files = rule_files(self._rule_paths)
        except FileValidationError as exc:
            return [*out, DefinitionFile("rules", ", ".join(self._rule_paths), "", exc.message)]
        for path in files:
            problem = ""
            try:
                load_rule_set([path], self._calling_hours)
            except FileValidationError as exc:
                problem = exc.message
            out.append(DefinitionFile("rules", path.name, _read(path), problem))
        return out


class ScriptWording:
    """Question texts, option labels and script titles from the script files, loaded on
    first use (a file that does not load is left out: the definitions page shows its
    problem). Keys are (script id, question id, "question=value" for an option or "" for
    the title, language); the newest version wins."""

    def __init__(self, scripts_dir: Path) -> None:
        self._scripts_dir = scripts_dir
        self._texts: dict[tuple[str, str, str], tuple[int, str]] | None = None
        self._index: tuple[IndexItem, ...] | None = None

    def wording(self, script_id: str, question_id: str, lang: str) -> str | None:
        return self._text(script_id, question_id, lang)

    def title(self, script_id: str, lang: str) -> str | None:
        return self._text(script_id, "", lang)

    def option_label(self, script_id: str, question_id: str, value: str, lang: str
                     ) -> str | None:
        return self._text(script_id, f"{question_id}={value}", lang)

    def satisfaction_index(self) -> tuple[IndexItem, ...]:
        if self._index is None:
            self._texts = self._load()
        assert self._index is not None
        return self._index

    def _text(self, script_id: str, key: str, lang: str) -> str | None:
        if self._texts is None:
            self._texts = self._load()
        found = self._texts.get((script_id, key, lang))
        return found[1] if found else None

    def _load(self) -> dict[tuple[str, str, str], tuple[int, str]]:
        from ivr.catalog import script_files
        from ivr.script_loader import load_script

        texts: dict[tuple[str, str, str], tuple[int, str]] = {}
        newest: dict[str, Script] = {}

        def keep(key: tuple[str, str, str], version: int, text: str) -> None:
            if key not in texts or texts[key][0] < version:
                texts[key] = (version, text)

        for path in script_files(self._scripts_dir):
            try:
                script = load_script(path)
            except FileValidationError:
                continue
            if script.id not in newest or newest[script.id].version < script.version:
                newest[script.id] = script
            lang = script.locale.split("-")[0]
            keep((script.id, "", lang), script.version, script.title)
            for q in script.questions:
                keep((script.id, q.id, lang), script.version, q.text.source)
                for option in q.options:
                    if option.label:
                        keep((script.id, f"{q.id}={option.value}", lang), script.version,
                             option.label)
        self._index = tuple(
            IndexItem(s.id, qid, s.question(qid).min or 0, s.question(qid).max or 1,
                      yes_no=s.question(qid).kind is QuestionKind.YES_NO)
            for s in sorted(newest.values(), key=lambda s: s.id)
            for qid in s.satisfaction_index)
        return texts


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[:MAX_SHOWN]
    except OSError as exc:
        return f"(unreadable: {exc.strerror})"


class SimClickToCall:
    """The sim backend places no real calls: click-to-call is logged and says so."""

    async def call(self, *, agent_extension: str, patient_phone: str, ticket_id: int) -> str:
        log.info("click-to-call (sim backend, no call placed): ticket %s, extension %s",
                 ticket_id, agent_extension)
        return (f"sim backend: no call placed (ticket {ticket_id}, extension "
                f"{agent_extension}); dial the patient by hand")


def console_secret(app: App) -> str:
    key = app.settings.console.secret_key.get_secret_value()
    if key:
        return key
    log.warning("console.secret_key is not set: sessions end when the console restarts")
    return secrets.token_urlsafe(48)


def build_console(app: App, *, https_only: bool = False) -> Starlette:
    s = app.settings
    deps = ConsoleDeps(
        db=app.db, clock=app.clock, audit=app.audit, recordings=recording_store(app),
        secret_key=console_secret(app), timezone=s.hospital.default_timezone,
        phone_region=s.hospital.default_region,
        calling_rules=CallingRules.from_settings(s.hospital.calling_hours, s.dialer.holidays,
                                                 s.dialer.max_calls_per_patient_per_day),
        response_times=s.tickets.response_times(),
        hospital_name=s.hospital.name, hospital_name_en=s.hospital.name_en,
        max_failed_logins=s.console.max_failed_logins,
        https_only=https_only,
        definitions=EngineDefinitions(Path(s.scripts.dir), list(s.rules.paths),
                                      s.hospital.calling_hours),
        questions=ScriptWording(Path(s.scripts.dir)),
        click_to_call=SimClickToCall() if s.dialer.backend == "sim"
        else _click_to_call(s))
    return create_app(deps)


def _click_to_call(s: Settings) -> AsteriskClickToCall:
    """Through the first server (where the agents' phones register) and the first trunk."""
    server = s.asterisk.server_list(s.dialer.max_channels)[0]
    trunk = s.asterisk.trunk_list(s.dialer.max_channels, s.dialer.calls_per_second)[0]
    return AsteriskClickToCall(
        AmiConfig(server.ami_host, server.ami_port, server.ami_user,
                  server.ami_secret.get_secret_value()),
        frozenset(s.asterisk.agents) | frozenset(s.asterisk.nurses),
        s.asterisk.caller_id, s.asterisk.originate_timeout_s,
        Trunk(trunk.name, trunk.dial_template))
