"""Bad configuration and broken files say what is wrong, naming the setting and the file:
TLS file settings are checked when settings are built, librdkafka's connection failures
are classified, and a model file that fails to load is called unreadable or corrupt."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from iotml.cli import main as iotml_main
from iotml.core.errors import ConfigError, IotmlError
from iotml.core.kafka_connect import (
    KafkaUnreachable,
    cluster_metadata,
    explain_connection_failure,
)
from iotml.core.options import build_settings
from iotml.core.settings import KafkaSettings, MqttSettings
from models import ModelError, Registry
from models.errors import UnreadableArtifact
from processor.metrics import Metrics
from processor.model import ModelHolder
from tests.model_fixtures import train_tiny_artifact

TLS_FILE_SETTINGS = [
    (KafkaSettings, "IOTML_KAFKA_SSL_CA"),
    (KafkaSettings, "IOTML_KAFKA_SSL_CERT"),
    (KafkaSettings, "IOTML_KAFKA_SSL_KEY"),
    (MqttSettings, "IOTML_MQTT_CA"),
    (MqttSettings, "IOTML_MQTT_CERT"),
    (MqttSettings, "IOTML_MQTT_KEY"),
]


def pem(path: Path) -> Path:
    path.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    return path


@pytest.fixture
def tls_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """Every TLS file setting pointing at an existing file, Kafka over SSL."""
    monkeypatch.setenv("IOTML_KAFKA_SECURITY_PROTOCOL", "SSL")
    for _, var in TLS_FILE_SETTINGS:
        monkeypatch.setenv(var, str(pem(tmp_path / f"{var.lower()}.pem")))
    return monkeypatch


@pytest.mark.parametrize(("cls", "var"), TLS_FILE_SETTINGS)
def test_a_missing_tls_file_names_the_setting_and_the_path(
    tls_env: pytest.MonkeyPatch, tmp_path: Path, cls: type[KafkaSettings], var: str
):
    missing = tmp_path / "nowhere" / "file.pem"
    tls_env.setenv(var, str(missing))
    with pytest.raises(ConfigError) as err:
        build_settings(cls, {})
    assert f"{var}: no such file: {missing}" in str(err.value)


def test_a_directory_given_as_a_tls_file_is_refused(tls_env: pytest.MonkeyPatch, tmp_path: Path):
    tls_env.setenv("IOTML_KAFKA_SSL_CA", str(tmp_path))
    with pytest.raises(ConfigError, match=f"IOTML_KAFKA_SSL_CA: {tmp_path} is a directory"):
        build_settings(KafkaSettings, {})


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_tls_file_is_refused(tls_env: pytest.MonkeyPatch, tmp_path: Path):
    key = pem(tmp_path / "locked.pem")
    key.chmod(0)
    tls_env.setenv("IOTML_MQTT_KEY", str(key))
    with pytest.raises(ConfigError, match=f"IOTML_MQTT_KEY: cannot read {key}"):
        build_settings(MqttSettings, {})


def test_existing_tls_files_reach_the_kafka_client(tls_env: pytest.MonkeyPatch, tmp_path: Path):
    conf = build_settings(KafkaSettings, {}).kafka_config()
    assert conf["ssl.ca.location"] == str(tmp_path / "iotml_kafka_ssl_ca.pem")
    assert conf["ssl.key.location"] == str(tmp_path / "iotml_kafka_ssl_key.pem")


def test_a_client_certificate_needs_its_key(tls_env: pytest.MonkeyPatch):
    tls_env.delenv("IOTML_KAFKA_SSL_KEY")
    with pytest.raises(ConfigError, match="IOTML_KAFKA_SSL_CERT and IOTML_KAFKA_SSL_KEY"):
        build_settings(KafkaSettings, {})


def test_tls_files_with_a_plaintext_protocol_say_which_protocol_to_use(
    tls_env: pytest.MonkeyPatch,
):
    tls_env.setenv("IOTML_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    with pytest.raises(ConfigError, match="PLAINTEXT, which does not use TLS: set it to SSL"):
        build_settings(KafkaSettings, {})


def test_a_ca_file_that_is_not_pem_is_named_before_connecting(tmp_path: Path):
    junk = tmp_path / "ca.pem"
    junk.write_text("not a certificate\n")
    conf = {"bootstrap.servers": "127.0.0.1:1", "security.protocol": "ssl"}
    with pytest.raises(
        KafkaUnreachable, match=f"IOTML_KAFKA_SSL_CA \\({junk}\\) is not a usable PEM"
    ):
        cluster_metadata({**conf, "ssl.ca.location": str(junk)}, timeout=5)


# librdkafka's own lines, as its error callback and logger deliver them.
VERIFY_FAILED = (
    "FAIL [rdkafka#producer-1] [thrd:ssl://b:9093/bootstrap]: ssl://b:9093/bootstrap: SSL "
    "handshake failed: error:0A000086:SSL routines::certificate verify failed: broker "
    "certificate could not be verified, verify that ssl.ca.location is correctly configured "
    "(after 18ms in state SSL_HANDSHAKE)"
)
BAD_CERTIFICATE = (
    "ssl://b:9093/bootstrap: Receive failed: error:0A000412:SSL routines::sslv3 alert bad "
    "certificate: SSL alert number 42 (after 12ms in state APIVERSION_QUERY)"
)
CERTIFICATE_UNKNOWN = (
    "ssl://b:9093/bootstrap: Receive failed: error:0A000416:SSL routines::sslv3 alert "
    "certificate unknown: SSL alert number 46 (after 3ms in state APIVERSION_QUERY)"
)
CLOSED_IN_APIVERSION = (
    "FAIL [rdkafka#producer-1] [thrd:b:9093/bootstrap]: b:9093/bootstrap: Disconnected: "
    "connection closed by peer: receive 0 after POLLIN (after 1ms in state APIVERSION_QUERY)"
)
TLS_TO_PLAINTEXT = (
    "ssl://b:9092/bootstrap: SSL handshake failed: Disconnected: SSL connection closed by "
    "peer: connecting to a PLAINTEXT broker listener? (after 15ms in state SSL_HANDSHAKE)"
)
SSL = {"bootstrap.servers": "b:9093", "security.protocol": "ssl"}


def test_an_unverified_broker_certificate_names_the_ca_setting():
    cause = explain_connection_failure([VERIFY_FAILED], {**SSL, "ssl.ca.location": "/p/ca.pem"})
    assert cause is not None and cause.conclusive
    assert cause.message.startswith(
        "TLS: the broker's certificate was not verified against IOTML_KAFKA_SSL_CA (/p/ca.pem)"
    )
    assert "[error:0A000086:SSL routines::certificate verify failed]" in cause.message


def test_an_unverified_broker_certificate_without_a_ca_setting_says_so():
    cause = explain_connection_failure([VERIFY_FAILED], SSL)
    assert cause is not None and "IOTML_KAFKA_SSL_CA is not set" in cause.message


def test_a_missing_client_certificate_says_which_settings_to_set():
    cause = explain_connection_failure([BAD_CERTIFICATE], SSL)
    assert cause is not None and cause.conclusive
    assert "requires a client certificate: set IOTML_KAFKA_SSL_CERT" in cause.message


def test_a_refused_client_certificate_names_it():
    conf = {**SSL, "ssl.certificate.location": "/p/client.crt"}
    cause = explain_connection_failure([CERTIFICATE_UNKNOWN], conf)
    assert cause is not None
    assert "refused the client certificate IOTML_KAFKA_SSL_CERT (/p/client.crt)" in cause.message


def test_a_plaintext_client_on_a_tls_port_is_told_to_use_tls():
    plain = {"bootstrap.servers": "b:9093", "security.protocol": "plaintext"}
    once = explain_connection_failure([CLOSED_IN_APIVERSION], plain)
    assert once is not None and not once.conclusive  # one early close may be a restart
    twice = explain_connection_failure([CLOSED_IN_APIVERSION] * 2, plain)
    assert twice is not None and twice.conclusive
    assert "probably a TLS listener" in twice.message and "is PLAINTEXT" in twice.message
    assert explain_connection_failure([CLOSED_IN_APIVERSION] * 2, SSL) is None


def test_a_tls_client_on_a_plaintext_port_is_told_so():
    cause = explain_connection_failure([TLS_TO_PLAINTEXT], SSL)
    assert cause is not None and "does not speak TLS on this port" in cause.message


def test_an_unreachable_broker_has_no_specific_cause():
    refused = "b:9092/bootstrap: Connect to ipv4#10.0.0.1:9092 failed: Connection refused"
    assert explain_connection_failure([refused], SSL) is None


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two compatible versions of ``temp``; LATEST at v0001."""
    root = tmp_path_factory.mktemp("registry")
    train_tiny_artifact(root)
    train_tiny_artifact(root, seed=3, promote=False)
    return root


@pytest.fixture
def truncated(registry: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the registry whose v0002 ``model.keras`` lost its second half."""
    import shutil

    root = tmp_path / "registry"
    shutil.copytree(registry, root)
    model = root / "temp" / "v0002" / "model.keras"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    (model.parent / "dense.npz").unlink()  # a version read through Keras
    return root, model


def test_a_truncated_model_file_is_unreadable_or_corrupt_not_missing(truncated):
    root, model = truncated
    with pytest.raises(UnreadableArtifact) as err:
        Registry(root).load("temp", "v0002")
    assert isinstance(err.value, ModelError) and isinstance(err.value, IotmlError)
    assert f"cannot load {model}: the file is unreadable or corrupt" in str(err.value)
    assert "not found" not in str(err.value).lower()


def test_a_missing_model_file_is_called_missing(truncated):
    root, model = truncated
    model.unlink()
    with pytest.raises(UnreadableArtifact, match=f"cannot load {model}: no such file"):
        Registry(root).load("temp", "v0002")


def test_a_truncated_manifest_is_unreadable_or_corrupt(truncated):
    root, _ = truncated
    manifest = root / "temp" / "v0002" / "manifest.json"
    manifest.write_text(manifest.read_text()[:40])
    with pytest.raises(UnreadableArtifact, match=f"{manifest}: the file is unreadable or corrupt"):
        Registry(root).load("temp", "v0002", with_model=False)


def test_models_promote_of_a_corrupt_model_ends_with_the_cause(truncated, capsys):
    root, model = truncated
    argv = ["models", "promote", "--model-registry", str(root), "--model-name", "temp", "v0002"]
    with pytest.raises(SystemExit) as exit_:
        iotml_main(argv)
    assert exit_.value.code == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"iotml: error: cannot load {model}: the file is unreadable or corrupt")
    assert Registry(root).latest("temp") == "v0001"


def test_the_processor_keeps_its_model_and_logs_why_a_corrupt_version_is_refused(truncated, caplog):
    root, model = truncated
    holder = ModelHolder(root, "temp", Metrics())
    assert holder.poll().version == "v0001"  # type: ignore[union-attr]
    Registry(root).promote("temp", "v0002")
    with caplog.at_level(logging.ERROR, logger="processor.model"):
        assert holder.poll().version == "v0001"  # type: ignore[union-attr]
    assert f"temp v0002 refused: cannot be loaded: cannot load {model}: the file is " in (
        caplog.text
    )
    assert "unreadable or corrupt" in caplog.text and "(running: v0001)" in caplog.text
