"""The loaded scripts by id, version and locale: what a call or a web questionnaire asks.

Built once by the composition root from `ivr.script_loader.load_scripts`; the dialer's call
planner and the patient's web questionnaire pick from the same library.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.errors import NotFound
from ivr.script_model import Script


class ScriptLibrary:
    """The loaded scripts, by id, version and locale."""

    def __init__(self, scripts: Sequence[Script], default_locale: str) -> None:
        self._by_key: dict[tuple[str, int, str], Script] = {
            (s.id, s.version, s.locale): s for s in scripts}
        self._default_locale = default_locale

    def pick(self, script_id: str, version: int, locale: str) -> Script:
        """The script in `locale`, else the hospital's default locale, else any.

        Raises NotFound when no locale of that script version is loaded."""
        for loc in (locale, self._default_locale):
            found = self._by_key.get((script_id, version, loc))
            if found is not None:
                return found
        for (sid, ver, _), script in sorted(self._by_key.items()):
            if sid == script_id and ver == version:
                return script
        raise NotFound(f"no script {script_id} v{version}")
