"""Settings: defaults <- followup.toml <- FOLLOWUP_* environment; errors name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import load_settings


def test_defaults_are_valid_and_sqlite(tmp_path: Path) -> None:
    s = load_settings(environ={}, overrides={"data_dir": str(tmp_path)})
    assert s.database_url == f"sqlite:///{tmp_path / 'followup.sqlite'}"
    assert s.hospital.default_region == "CN"
    assert s.rules.calls_per_patient_per_day == 1


def test_layering_env_beats_file_beats_defaults(tmp_path: Path) -> None:
    cfg = tmp_path / "followup.toml"
    cfg.write_text('[dialer]\nmax_channels = 20\ncalls_per_second = 2.5\n'
                   '[hospital]\nname = "协和"\n', encoding="utf-8")
    s = load_settings(cfg, environ={"FOLLOWUP_DIALER__MAX_CHANNELS": "30"})
    assert s.dialer.max_channels == 30  # env wins
    assert s.dialer.calls_per_second == 2.5  # from the file
    assert s.hospital.name == "协和"
    assert s.dialer.lease_seconds == 300  # default


def test_config_path_from_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "site.toml"
    cfg.write_text("data_dir = '/srv/followup'\n", encoding="utf-8")
    s = load_settings(environ={"FOLLOWUP_CONFIG": str(cfg)})
    assert s.data_dir == "/srv/followup"


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"FOLLOWUP_DIALER__MAX_CHANNELS": "many"}, "dialer.max_channels"),
        ({"FOLLOWUP_DIALER__MAX_CHANNELS": "0"}, "dialer.max_channels"),
        ({"FOLLOWUP_HOSPITAL__DEFAULT_TIMEZONE": "Mars/Olympus"}, "hospital.default_timezone"),
        ({"FOLLOWUP_HOSPITAL__DEFAULT_REGION": "China"}, "hospital.default_region"),
        ({"FOLLOWUP_ASTERISK__NO_SUCH_KEY": "1"}, "asterisk.no_such_key"),
    ],
)
def test_invalid_values_name_the_key(environ: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ=environ)
    assert info.value.key == key
    assert key in str(info.value)


def test_ticket_response_hours_per_reason(tmp_path: Path) -> None:
    import datetime as dt

    from core.enums import Severity, TicketReason

    cfg = tmp_path / "followup.toml"
    cfg.write_text("[tickets.response_hours]\nattempts_exhausted = 24\nred_flag = 2\n",
                   encoding="utf-8")
    times = load_settings(cfg, environ={}).tickets.response_times()
    now = dt.datetime(2026, 12, 8, 2, 0, tzinfo=dt.UTC)
    assert times.due(TicketReason.ATTEMPTS_EXHAUSTED, None, now) == now + dt.timedelta(hours=24)
    assert times.due(TicketReason.RED_FLAG, None, now) == now + dt.timedelta(hours=2)
    # a red flag with a severity keeps the severity's time; a reason not set, its default
    assert times.due(TicketReason.RED_FLAG, Severity.CRITICAL, now) == now + dt.timedelta(hours=1)
    assert times.due(TicketReason.INVALID_NUMBER, None, now) == now + dt.timedelta(hours=72)
    for bad, key in (("no_such_reason = 3", "tickets.response_hours"),
                     ("red_flag = 0", "tickets.response_hours")):
        cfg.write_text(f"[tickets.response_hours]\n{bad}\n", encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            load_settings(cfg, environ={})
        assert str(info.value.key).startswith(key), info.value


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "followup.toml"
    cfg.write_text("[dialer\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"followup\.toml"):
        load_settings(cfg, environ={})


def test_secrets_are_never_printed() -> None:
    s = load_settings(environ={
        "FOLLOWUP_ASTERISK__AMI_SECRET": "s3cret-ami",
        "FOLLOWUP_DATABASE__URL": "postgresql://app:pg-pass@db.local/followup",
        "FOLLOWUP_RECORDINGS__ENCRYPTION_KEY": "k" * 44,
    })
    shown = repr(s) + str(s.redacted())
    for secret in ("s3cret-ami", "pg-pass", "k" * 44):
        assert secret not in shown
    assert s.asterisk.ami_secret.get_secret_value() == "s3cret-ami"


TENCENT_TOML = """[sms]
gateway = "tencent"
tencent_secret_id = "AKIDexample"
tencent_secret_key = "tencent-key-secret"
tencent_sdk_app_id = 1400006666
tencent_sign_name = "示范医院"
[sms.tencent_templates]
questionnaire_link = "1110001"
red_flag_notice = 1110002
revisit_reminder = "1110003"
medication_reminder = "1110004"
"""


def test_tencent_sms_settings_read_from_the_file_and_keep_their_secrets(
        tmp_path: Path) -> None:
    cfg = tmp_path / "followup.toml"
    cfg.write_text(TENCENT_TOML, encoding="utf-8")
    s = load_settings(cfg, environ={})
    assert s.sms.tencent_sdk_app_id == "1400006666"  # written unquoted, read as text
    assert s.sms.tencent_templates["red_flag_notice"] == "1110002"
    assert s.sms.tencent_region == "ap-guangzhou"
    shown = repr(s) + str(s.redacted())
    assert "tencent-key-secret" not in shown and "AKIDexample" not in shown


@pytest.mark.parametrize(("drop", "key", "words"), [
    ('tencent_secret_key = "tencent-key-secret"\n', "sms.tencent_secret_key", "required"),
    ("tencent_sdk_app_id = 1400006666\n", "sms.tencent_sdk_app_id", "required"),
    ('tencent_sign_name = "示范医院"\n', "sms.tencent_sign_name", "required"),
    ('revisit_reminder = "1110003"\n', "sms.tencent_templates",
     "no TemplateId for revisit_reminder"),
])
def test_tencent_sms_settings_missing_a_key_name_it(tmp_path: Path, drop: str, key: str,
                                                    words: str) -> None:
    cfg = tmp_path / "followup.toml"
    cfg.write_text(TENCENT_TOML.replace(drop, ""), encoding="utf-8")
    with pytest.raises(ConfigError, match=words) as caught:
        load_settings(cfg, environ={})
    assert caught.value.key == key


def test_tencent_template_ids_are_checked_even_when_another_gateway_is_used() -> None:
    with pytest.raises(ConfigError, match="complaint: not one of our templates") as caught:
        load_settings(environ={"FOLLOWUP_SMS__TENCENT_TEMPLATES": '{"complaint": "1"}'})
    assert caught.value.key == "sms.tencent_templates"
    with pytest.raises(ConfigError, match="is not a TemplateId"):
        load_settings(environ={"FOLLOWUP_SMS__TENCENT_TEMPLATES":
                               '{"questionnaire_link": "SMS_1"}'})
    assert load_settings(environ={}).sms.gateway == "sim"  # no Tencent key needed for sim
