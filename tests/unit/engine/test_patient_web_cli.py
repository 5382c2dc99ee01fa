"""`followup patient-web` builds the questionnaire app from the settings, with the key
`followup run` signs the links with, and refuses a configured key too short to trust."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.clock import FakeClock
from core.errors import ConfigError
from core.settings import Settings
from engine.app import build_app
from engine.commands.patient_web import build_patient_web
from engine.sms_service import link_key

REPO = Path(__file__).resolve().parents[3]


def _settings(tmp_path: Path, key: str) -> Settings:
    return Settings.model_validate({"data_dir": str(tmp_path),
                                    "scripts": {"dir": str(REPO / "scripts")},
                                    "patient_web": {"secret_key": key,
                                                    "public_url": "https://q.example.org",
                                                    "requests_per_minute": 12}})


def test_the_app_is_built_from_the_settings(tmp_path: Path, clock: FakeClock) -> None:
    app = build_app(_settings(tmp_path, "k" * 40), clock)
    try:
        web = build_patient_web(app)
        deps = web.state.deps
        assert deps.key == b"k" * 40 and deps.requests_per_minute == 12
        assert deps.secure_cookies  # served over https: the cookie is Secure
        assert deps.library.pick("cardiology-post-discharge", 1, "zh-CN").locale == "zh-CN"
        assert {r.path for r in web.routes} >= {"/q/{token:str}", "/q/{token:str}/answer"}
        assert not any(r.path.startswith(("/login", "/worklist")) for r in web.routes)
    finally:
        app.close()


def test_a_short_key_is_refused_and_no_key_means_the_data_folders_own(
        tmp_path: Path, clock: FakeClock) -> None:
    app = build_app(_settings(tmp_path, "short"), clock)
    try:
        with pytest.raises(ConfigError, match="secret_key"):
            build_patient_web(app)
    finally:
        app.close()
    app = build_app(_settings(tmp_path, ""), clock)
    try:
        key = build_patient_web(app).state.deps.key
        assert key == link_key(app) and len(key) >= 32  # what `followup run` signs with
        assert (tmp_path / "patient-web.key").stat().st_mode & 0o077 == 0
    finally:
        app.close()
