"""`[sms] gateway` picks the adapter; a gateway whose extra is missing is one plain line."""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import cast

import pytest

from core.errors import ConfigError
from core.settings import Settings, load_settings
from engine.app import App
from engine.sms_service import gateway

TENCENT = {"sms": {
    "gateway": "tencent", "tencent_secret_id": "AKIDexample", "tencent_secret_key": "k",
    "tencent_sdk_app_id": "1400006666", "tencent_sign_name": "示范医院",
    "tencent_templates": {"questionnaire_link": "1", "red_flag_notice": "2",
                          "revisit_reminder": "3", "medication_reminder": "4"}}}


def _app(settings: Settings) -> App:
    return cast(App, SimpleNamespace(settings=settings))


async def test_tencent_names_the_tencent_cloud_adapter() -> None:
    pytest.importorskip("tencentcloud.sms", reason="the cloud-sms extra is not installed")
    from messaging.tencent_sms import TencentSmsGateway

    built = gateway(_app(load_settings(environ={}, overrides=TENCENT)))
    assert isinstance(built, TencentSmsGateway) and built.name == "tencent"
    await built.close()


def test_without_the_extra_the_error_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "messaging.tencent_sms", None)  # import fails
    with pytest.raises(ConfigError) as caught:
        gateway(_app(load_settings(environ={}, overrides=TENCENT)))
    assert caught.value.key == "sms.gateway"
    assert "pip install '.[cloud-sms]'" in str(caught.value)
    assert "\n" not in str(caught.value)
