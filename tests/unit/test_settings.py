"""Settings: flags beat the environment, which beats defaults; errors name the variable."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from bridge.settings import BridgeSettings, SimulatorSettings
from iotml.core.durations import format_duration_ms, parse_duration_ms
from iotml.core.errors import ConfigError
from iotml.core.eventtime import EventTimeRange
from iotml.core.options import build_settings, option_docs, settings_options
from iotml.core.settings import EventTimeSettings, KafkaSettings, MqttSettings
from iotml.core.topics import TopicsSettings, topic_specs


class _Both(KafkaSettings, MqttSettings):
    pass


@pytest.mark.parametrize(
    ("text", "ms"),
    [("500ms", 500), ("10s", 10_000), ("30m", 1_800_000), ("1h", 3_600_000), ("2", 2000)],
)
def test_durations_parse(text, ms):
    assert parse_duration_ms(text) == ms


def test_durations_format_shortest():
    assert format_duration_ms(1_800_000) == "30m"
    assert format_duration_ms(1500) == "1500ms"


def test_shared_defaults_keep_their_names(monkeypatch):
    s = build_settings(_Both, {})
    assert s.kafka_bootstrap == "localhost:9092"
    assert s.mqtt_url == "mqtt://localhost:1883"
    envs = {d.env for d in option_docs(_Both)}
    assert {"IOTML_KAFKA_BOOTSTRAP", "IOTML_MQTT_URL"} <= envs


def test_flag_beats_environment_beats_default(monkeypatch):
    monkeypatch.setenv("IOTML_KAFKA_BOOTSTRAP", "env:1")
    assert build_settings(_Both, {}).kafka_bootstrap == "env:1"
    assert build_settings(_Both, {"kafka_bootstrap": "flag:2"}).kafka_bootstrap == "flag:2"


def test_bad_config_names_the_variable(monkeypatch):
    monkeypatch.setenv("IOTML_MQTT_URL", "http://nope")
    with pytest.raises(ConfigError, match="IOTML_MQTT_URL"):
        build_settings(_Both, {})


def test_sasl_needs_credentials():
    with pytest.raises(ConfigError, match="SASL"):
        build_settings(KafkaSettings, {"kafka_security_protocol": "SASL_SSL"})


def test_secrets_are_not_printed(monkeypatch):
    monkeypatch.setenv("IOTML_KAFKA_SASL_PASSWORD", "hunter2")
    s = build_settings(KafkaSettings, {})
    assert "hunter2" not in repr(s) and "hunter2" not in str(s)
    assert s.kafka_config()["sasl.password"] == "hunter2"


def test_kafka_client_config_carries_tls_and_sasl(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    s = build_settings(
        KafkaSettings,
        {
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": "u",
            "kafka_sasl_password": "p",
            "kafka_ssl_ca": str(ca),
        },
    )
    conf = s.kafka_config()
    assert conf["security.protocol"] == "sasl_ssl"
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["ssl.ca.location"] == str(ca)


def test_mqtts_url_means_tls():
    s = build_settings(MqttSettings, {"mqtt_url": "mqtts://broker.example:8883"})
    assert s.mqtt_endpoint() == ("broker.example", 8883, True)


def test_help_names_every_variable():
    @click.command()
    @settings_options(_Both)
    def cmd(**kwargs):
        pass

    out = CliRunner().invoke(cmd, ["--help"]).output
    for doc in option_docs(_Both):
        assert doc.flag in out
        assert doc.env in out.replace("\n", "").replace(" ", "")


def test_event_time_range():
    r = EventTimeRange(max_age_ms=1000, max_future_ms=100)
    assert r.check(5000, now=5000) is None
    assert r.check(3999, now=5000) == "ts_too_old"
    assert r.check(5101, now=5000) == "ts_in_future"


def test_event_max_future_must_stay_below_kafkas_limit():
    with pytest.raises(ConfigError, match="1h"):
        build_settings(EventTimeSettings, {"event_max_future": "2h"})


def test_topic_spec_defaults():
    specs = {s.name: s for s in topic_specs(TopicsSettings())}
    assert set(specs) == {
        "readings",
        "readings-dlq",
        "predictions",
        "alerts",
        "processor-dlq",
        "alert-state",
        "evaluations",
        "model-events",
        "egress-dlq",
    }
    assert specs["readings"].partitions == 4
    assert specs["readings"].topic_config()["cleanup.policy"] == "delete"
    assert specs["alert-state"].topic_config()["cleanup.policy"] == "compact"


def test_settings_reject_bad_routes_and_faults():
    with pytest.raises(ConfigError, match="zone"):
        build_settings(BridgeSettings, {"routes": ("a/{device}=t-{zone}",)})
    with pytest.raises(ConfigError, match="kind"):
        build_settings(SimulatorSettings, {"sim_faults": ("dev-1:melt",)})


def test_routes_from_the_environment_are_comma_separated(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("IOTML_ROUTES", "a/{device}/{metric}=ta, b/{site}/{device}=tb:{site}")
    s = build_settings(BridgeSettings, {})
    assert s.routes == ["a/{device}/{metric}=ta", "b/{site}/{device}=tb:{site}"]


@pytest.mark.parametrize(
    ("args", "absent"),
    [
        (["stack", "fetch"], ["--readings-partitions", "--stack-dir", "--kafka-port"]),
        (["stack", "down"], ["--readings-partitions", "--topic-readings"]),
        (["stack", "status"], ["--readings-partitions", "--topic-readings"]),
        (["topics", "list"], ["--readings-partitions", "--topic-readings"]),
    ],
)
def test_a_command_offers_no_setting_it_does_not_use(args, absent):
    from iotml.cli import cli

    out = CliRunner().invoke(cli, [*args, "--help"]).output
    assert "--log-level" in out
    for flag in absent:
        assert flag not in out
