"""`iotml egress` on the command line: every setting documented, the MQTT edge stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from bridge.egress.settings import EgressSettings
from iotml.cli import cli, main
from iotml.core.options import option_docs


def test_help_names_every_setting_and_its_variable():
    result = CliRunner().invoke(cli, ["egress", "--help"], terminal_width=200)
    assert result.exit_code == 0
    for doc in option_docs(EgressSettings):
        assert doc.flag in result.output and doc.env in result.output


def test_egress_shares_the_mqtt_and_kafka_settings_of_the_other_services():
    names = set(EgressSettings.model_fields)
    assert {"mqtt_url", "mqtt_username", "mqtt_password", "mqtt_ca", "mqtt_cert"} <= names
    assert {"kafka_bootstrap", "kafka_security_protocol", "http_port"} <= names
    bridge_keepalive = EgressSettings.model_fields["mqtt_keepalive"]
    assert bridge_keepalive.description == "MQTT keepalive, seconds."


def test_egress_never_imports_tensorflow():
    code = (
        "import sys, bridge.egress.cli, bridge.egress.service\n"
        "print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_bad_setting_exits_with_a_message_naming_its_variable(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["egress", "--egress-alert-topic", "a/{device}"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "IOTML_EGRESS_ALERT_TOPIC" in err and "lacks {type}" in err
