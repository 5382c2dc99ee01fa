"""`followup asterisk render`: the essentials are in the files; bad values never get in."""

from __future__ import annotations

import configparser
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from core.errors import ConfigError
from core.settings import AmdSettings, AsteriskSettings, load_settings
from dialer.asterisk import conf_render
from engine.cli import cli


def settings(**overrides: object) -> AsteriskSettings:
    base: dict[str, object] = {"ami_secret": SecretStr("amipw"),
                               "agent_secret": SecretStr("agentpw"),
                               "agi_host": "10.0.0.5", "agi_port": 4574,
                               "trunk_host": "192.0.2.10", "trunk_port": 5080,
                               "caller_id": "5550100"}
    base.update(overrides)
    return AsteriskSettings(**base)  # type: ignore[arg-type]


def sections(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None,
                                       comment_prefixes=(";",), delimiters=("=", "=>"))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def test_rendered_files_hold_the_essentials() -> None:
    files = conf_render.render(conf_render.validate(settings()))
    assert set(files) == set(conf_render.TEMPLATES)
    ext = files["extensions.conf"]
    assert "FOLLOWUP_AGI=agi://10.0.0.5:4574/followup" in ext
    assert "AGI(${FOLLOWUP_AGI}?attempt=${FOLLOWUP_ATTEMPT}&recorded=${FOLLOWUP_RECORDED}" in ext
    assert "MixMonitor(/var/spool/asterisk/monitor/followup/call-${FOLLOWUP_ATTEMPT}" in ext
    assert ext.index("MixMonitor(") < ext.index("AGI(")  # the whole call is recorded
    # answering-machine detection after the answer, before any prompt; its verdict to the IVR
    assert ext.index("MixMonitor(") < ext.index("AMD()") < ext.index("AGI(")
    assert "&amd=${AMDSTATUS}&amdcause=${AMDCAUSE}&" in ext
    amd = sections(files["amd.conf"])["general"]
    assert (amd["initial_silence"], amd["greeting"], amd["after_greeting_silence"],
            amd["total_analysis_time"], amd["maximum_number_of_words"]) == (
        "2500", "3000", "800", "7000", "10")
    assert "Queue(followup-nurses," in ext and "Queue(followup-agents," in ext
    assert '"${FOLLOWUP_TRANSFER}" = "followup-nurses"' in ext
    manager = sections(files["manager.conf"])
    assert manager["followup"]["secret"] == "amipw"
    assert set(manager["followup"]["read"].split(",")) == {"system", "call", "dialplan",
                                                          "agent", "cdr"}
    assert set(manager["followup"]["write"].split(",")) == {"originate", "call", "reporting"}
    assert sections(files["cdr.conf"])["general"]["unanswered"] == "yes"
    assert sections(files["cdr_manager.conf"])["general"]["enabled"] == "yes"
    pjsip = files["pjsip.conf"]
    assert "contact=sip:192.0.2.10:5080" in pjsip and "from_user=5550100" in pjsip
    assert "[2001-auth]" in pjsip and "password=agentpw" in pjsip
    assert "outbound_auth" not in pjsip  # no trunk user: IP authentication
    assert "endpoint_identifier_order=username,ip" in pjsip  # agents beside the gateway
    assert "qualify_frequency=0" in pjsip
    assert "leavewhenempty=" in files["queues.conf"]  # (leaveempty is not a keyword)
    queues = files["queues.conf"]
    assert "[followup-nurses]" in queues and "member => PJSIP/2101,0,Nurse 2101" in queues
    assert "member => PJSIP/2002,0,Agent 2002" in queues


def test_trunk_registration_when_a_user_is_set() -> None:
    files = conf_render.render(conf_render.validate(settings(
        trunk_username="hosp", trunk_secret=SecretStr("tpw"))))
    assert "outbound_auth=carrier-auth" in files["pjsip.conf"]
    assert "username=hosp\npassword=tpw" in files["pjsip.conf"]


@pytest.mark.parametrize(("key", "value"), [
    ("ami_secret", SecretStr("pw\n[evil]\nread=all")),
    ("ami_secret", SecretStr("pw;comment")),
    ("ami_secret", SecretStr("")),
    ("agent_secret", SecretStr(" padded")),
    ("trunk", "carrier]\n[x"),
    ("trunk_host", "h;x"),
    ("agi_host", "host/evil"),
    ("nurse_queue", "a b"),
    ("recording_dir", "relative/dir"),
    ("recording_dir", "/tmp/${EVIL}"),
    ("agents", ["2001", "20;02"]),
    ("ami_permit", "0.0.0.0/0.0.0.0\npermit=1"),
    ("trunk_username", "u\n"),
])
def test_unsafe_values_are_refused_with_the_setting_name(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as err:
        conf_render.validate(settings(**{key: value}))
    assert err.value.key.startswith(f"asterisk.{key}")


def test_a_caller_id_that_is_not_a_number_is_refused_in_the_settings() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(environ={"FOLLOWUP_ASTERISK__CALLER_ID": "555-0100"})
    assert err.value.key == "asterisk.caller_id"


def test_cli_render_writes_private_files(tmp_path: Path) -> None:
    out = tmp_path / "conf"
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), "asterisk",
                                      "render", "--out", str(out)],
                                env={"FOLLOWUP_ASTERISK__AMI_SECRET": "x1",
                                     "FOLLOWUP_ASTERISK__AGENT_SECRET": "x2"})
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(conf_render.TEMPLATES)
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert "secret=x1" in (out / "manager.conf").read_text()


def test_answering_machine_detection_can_be_turned_off() -> None:
    files = conf_render.render(conf_render.validate(settings(
        amd=AmdSettings(enabled=False, greeting_ms=2000))))
    assert "AMD()" not in files["extensions.conf"]
    assert sections(files["amd.conf"])["general"]["greeting"] == "2000"


def test_a_dedicated_server_gets_its_base_files() -> None:
    files = conf_render.render(conf_render.validate(settings(rtp_start=12000, rtp_end=12400)))
    modules = files["modules.conf"]
    assert sections(modules)["modules"]["autoload"] == "no"
    loaded = {line.split("=>")[1].strip() for line in modules.splitlines()
              if line.startswith("load =>")}
    # what the rendered dialplan, the trunk, the phones and the recordings need
    assert {"chan_pjsip.so", "res_agi.so", "app_queue.so", "app_mixmonitor.so", "app_amd.so",
            "app_waitforsilence.so",
            "app_dial.so", "app_stack.so", "pbx_config.so", "cdr_manager.so",
            "format_wav.so", "format_sln.so", "res_pjsip_registrar.so",
            "res_pjsip_outbound_registration.so"} <= loaded
    assert "app_voicemail.so" not in loaded and "res_ari.so" not in loaded
    assert sections(files["asterisk.conf"])["options"]["transmit_silence"] == "yes"
    assert "messages.log" in sections(files["logger.conf"])["logfiles"]
    assert dict(sections(files["rtp.conf"])["general"]) == {"rtpstart": "12000",
                                                            "rtpend": "12400"}


def test_a_phone_at_a_fixed_address_gets_a_static_contact() -> None:
    files = conf_render.render(conf_render.validate(settings(
        phone_contacts={"2101": "sip:2101@10.0.0.21:5060"})))
    pjsip = files["pjsip.conf"]
    nurse = pjsip[pjsip.index("[2101]\ntype=aor"):]
    assert nurse.index("contact=sip:2101@10.0.0.21:5060") < nurse.index("remove_existing")
    agent = pjsip[pjsip.index("[2001]\ntype=aor"):pjsip.index("[2002]")]
    assert "contact=" not in agent and "max_contacts=1" in agent


@pytest.mark.parametrize(("contacts", "field"), [
    ({"9999": "sip:9999@10.0.0.2"}, "asterisk.phone_contacts.9999"),
    ({"2001": "sip:2001@10.0.0.2\nload => evil.so"}, "asterisk.phone_contacts.2001"),
])
def test_a_bad_static_contact_is_refused_with_its_setting(contacts: dict[str, str],
                                                          field: str) -> None:
    with pytest.raises(ConfigError) as err:
        conf_render.validate(settings(phone_contacts=contacts))
    assert err.value.key == field


SEVERAL = {
    "trunks": [{"name": "mobile", "host": "192.0.2.20", "port": 5061, "prefixes": ["1"],
                "caller_id": "5550111", "max_channels": 4, "qualify_s": 30},
               {"name": "landline", "host": "192.0.2.21", "username": "hosp",
                "secret": "gwpw"}],
    "servers": [{"name": "ast1", "ami_port": 5038, "ami_secret": "s1",
                 "sip_bind": "0.0.0.0:5060", "rtp_start": 10000, "rtp_end": 14999},
                {"name": "ast2", "ami_host": "10.0.0.12", "ami_port": 5039,
                 "ami_secret": "s2", "sip_bind": "0.0.0.0:5070", "rtp_start": 15000,
                 "rtp_end": 19999}]}


def test_each_server_gets_every_trunk_and_its_own_ports_and_name() -> None:
    s = settings(**SEVERAL)
    one = conf_render.render(conf_render.validate(s, "ast1"))
    two = conf_render.render(conf_render.validate(s, "ast2"))
    for files in (one, two):
        pjsip = sections(files["pjsip.conf"])
        assert pjsip["mobile"]["from_user"] == "5550111"  # the trunk's own caller id
        assert pjsip["landline"]["from_user"] == "5550100"  # the hospital's
        assert pjsip["landline"]["outbound_auth"] == "landline-auth"
        assert pjsip["landline-auth"]["password"] == "gwpw"
        assert "contact=sip:192.0.2.20:5061" in files["pjsip.conf"]
        aors = [sec for sec in files["pjsip.conf"].split("\n[") if "type=aor" in sec]
        mobile = next(a for a in aors if a.startswith("mobile]"))
        landline = next(a for a in aors if a.startswith("landline]"))
        assert "qualify_frequency=30" in mobile and "qualify_frequency=0" in landline
        assert "@mobile," in files["extensions.conf"]  # a callback leaves by the first
    assert sections(one["manager.conf"])["general"]["port"] == "5038"
    assert sections(two["manager.conf"])["general"]["port"] == "5039"
    assert sections(two["manager.conf"])["general"]["bindaddr"] == "10.0.0.12"
    assert sections(two["manager.conf"])["followup"]["secret"] == "s2"
    assert sections(two["pjsip.conf"])["transport-udp"]["bind"] == "0.0.0.0:5070"
    assert sections(two["rtp.conf"])["general"]["rtpstart"] == "15000"
    # uniqueids of two servers never collide in the store
    assert sections(one["asterisk.conf"])["options"]["systemname"] == "ast1"
    assert sections(two["asterisk.conf"])["options"]["systemname"] == "ast2"
    assert "systemname" not in conf_render.render(conf_render.validate(settings()))[
        "asterisk.conf"]


def test_cli_render_writes_one_folder_per_server(tmp_path: Path) -> None:
    toml = tmp_path / "followup.toml"
    toml.write_text('[asterisk]\nagent_secret = "a"\n'
                    '[[asterisk.trunks]]\nname = "gw"\n'
                    '[[asterisk.servers]]\nname = "ast1"\nami_secret = "s1"\n'
                    '[[asterisk.servers]]\nname = "ast2"\nami_secret = "s2"\n'
                    'ami_port = 5039\n')
    result = CliRunner().invoke(cli, ["--config", str(toml), "--data-dir",
                                      str(tmp_path / "data"), "asterisk", "render",
                                      "--out", str(tmp_path / "etc")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "etc" / "ast1" / "manager.conf").exists()
    assert "port=5039" in (tmp_path / "etc" / "ast2" / "manager.conf").read_text()


def test_a_server_without_its_secret_is_refused_by_its_key() -> None:
    s = settings(servers=[{"name": "ast1", "ami_secret": "s1"}, {"name": "ast2"}])
    with pytest.raises(ConfigError) as err:
        conf_render.validate(s, "ast2")
    assert err.value.key == "asterisk.servers.1.ami_secret"


def test_two_trunks_of_one_name_are_refused_at_load() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(environ={}, overrides={"asterisk": {"trunks": [{"name": "gw"},
                                                                    {"name": "gw"}]}})
    assert "used twice" in str(err.value)
