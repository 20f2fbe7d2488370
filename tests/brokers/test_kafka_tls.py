"""``iotml topics ensure`` against a Kafka whose TLS listener requires a client certificate:
with the right CA and certificate it works; every way of getting TLS wrong ends in one
``iotml:`` line that names the cause and the setting, and fails fast instead of waiting out
the connection timeout.

The broker is a second :class:`KafkaBroker` (module-scoped) with an SSL listener next to its
plaintext one; its CA, its certificate and the clients' certificates are made in a temporary
directory by ``make_pki`` (``openssl`` command lines), and a second, unrelated CA plays the
wrong one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from iotml.stack import KafkaBroker
from iotml.stack.procs import free_port
from iotml.stack.settings import default_cache_dir
from tests.tlstools import make_pki

pytestmark = [pytest.mark.brokers, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Pki:
    good: Path  # the CA the broker's certificate and the accepted client certificate use
    other: Path  # an unrelated CA with its own client certificate

    def client(self, pki: Path) -> dict[str, str]:
        return {
            "IOTML_KAFKA_SSL_CERT": str(pki / "client.crt"),
            "IOTML_KAFKA_SSL_KEY": str(pki / "client.key"),
        }


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    good, other = tmp_path_factory.mktemp("pki"), tmp_path_factory.mktemp("pki-other")
    make_pki(good)
    make_pki(other)
    return Pki(good, other)


@pytest.fixture(scope="module")
def tls_kafka(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[KafkaBroker]:
    broker = KafkaBroker(
        data_dir=tmp_path_factory.mktemp("kafka-tls"),
        port=free_port(),
        controller_port=free_port(),
        cache_dir=Path(os.environ.get("IOTML_CACHE_DIR", default_cache_dir())),
        heap="512m",
        ssl_port=free_port(),
        ssl_cert=pki.good / "server.crt",
        ssl_key=pki.good / "server.key",
        ssl_client_ca=pki.good / "ca.crt",
    )
    broker.start(timeout=180)
    yield broker
    broker.stop()


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str
    took: float

    @property
    def last_line(self) -> str:
        lines = self.err.strip().splitlines()
        return lines[-1] if lines else ""


def ensure(
    broker: KafkaBroker,
    env: dict[str, str],
    topic: str,
    command: tuple[str, ...] = ("topics", "ensure"),
) -> Run:
    """``python -m iotml topics ensure`` (or ``command``) with the Kafka settings only in
    ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("IOTML_")}
    names = {
        f"IOTML_TOPIC_{role.upper()}": f"{topic}-{role.replace('_', '-')}"
        for role in ("readings", "readings_dlq", "predictions", "alerts", "processor_dlq")
    }
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "iotml", *command],
        env={**base, "IOTML_KAFKA_BOOTSTRAP": broker.ssl_bootstrap, **names, **env},
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=90,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


def tls(ca: Path, client: dict[str, str] | None = None) -> dict[str, str]:
    return {"IOTML_KAFKA_SECURITY_PROTOCOL": "SSL", "IOTML_KAFKA_SSL_CA": str(ca), **(client or {})}


@pytest.fixture
def topic() -> str:
    return f"tls-{uuid.uuid4().hex[:8]}"


def test_the_right_ca_and_client_certificate_create_the_topics(
    tls_kafka: KafkaBroker, pki: Pki, topic: str
):
    run = ensure(tls_kafka, tls(pki.good / "ca.crt", pki.client(pki.good)), topic)
    assert run.code == 0, run.err
    assert f"{topic}-readings " in run.out and "created" in run.out
    md = AdminClient({"bootstrap.servers": tls_kafka.bootstrap}).list_topics(timeout=10)
    assert f"{topic}-readings" in md.topics


def test_a_wrong_ca_says_the_broker_certificate_was_not_verified(
    tls_kafka: KafkaBroker, pki: Pki, topic: str
):
    ca = pki.other / "ca.crt"
    run = ensure(tls_kafka, tls(ca, pki.client(pki.good)), topic)
    assert run.code == 1, run.err
    assert run.last_line.startswith(
        f"iotml: error: Kafka at {tls_kafka.ssl_bootstrap}: TLS: the broker's certificate "
        f"was not verified against IOTML_KAFKA_SSL_CA ({ca})"
    ), run.err
    assert run.took < 20, f"a certificate failure should not wait out the timeout ({run.took:.0f}s)"


def test_a_missing_ca_file_names_the_setting_and_the_path(
    tls_kafka: KafkaBroker, pki: Pki, topic: str
):
    missing = pki.good / "no-such-ca.pem"
    run = ensure(tls_kafka, tls(missing, pki.client(pki.good)), topic)
    assert run.code == 2, run.err
    assert run.last_line == f"  --kafka-ssl-ca / IOTML_KAFKA_SSL_CA: no such file: {missing}"
    assert "Traceback" not in run.err


def test_a_plaintext_client_on_the_tls_port_is_told_to_use_tls(tls_kafka: KafkaBroker, topic: str):
    run = ensure(tls_kafka, {"IOTML_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}, topic)
    assert run.code == 1, run.err
    assert run.last_line == (
        f"iotml: error: Kafka at {tls_kafka.ssl_bootstrap}: the broker closes the connection "
        "before answering: the port is probably a TLS listener, and "
        "IOTML_KAFKA_SECURITY_PROTOCOL is PLAINTEXT (use SSL or SASL_SSL, with IOTML_KAFKA_SSL_CA)"
    ), run.err
    assert run.took < 20, f"a protocol mismatch should not wait out the timeout ({run.took:.0f}s)"


def test_no_client_certificate_says_the_broker_requires_one(
    tls_kafka: KafkaBroker, pki: Pki, topic: str
):
    run = ensure(tls_kafka, tls(pki.good / "ca.crt"), topic)
    assert run.code == 1, run.err
    assert run.last_line.startswith(
        f"iotml: error: Kafka at {tls_kafka.ssl_bootstrap}: TLS: the broker requires a client "
        "certificate: set IOTML_KAFKA_SSL_CERT and IOTML_KAFKA_SSL_KEY"
    ), run.err
    assert run.took < 20


def test_a_client_certificate_from_another_ca_is_refused_by_name(
    tls_kafka: KafkaBroker, pki: Pki, topic: str
):
    run = ensure(tls_kafka, tls(pki.good / "ca.crt", pki.client(pki.other)), topic)
    assert run.code == 1, run.err
    assert run.last_line.startswith(
        f"iotml: error: Kafka at {tls_kafka.ssl_bootstrap}: TLS: the broker refused the client "
        f"certificate IOTML_KAFKA_SSL_CERT ({pki.other / 'client.crt'})"
    ), run.err
    assert run.took < 20


def test_the_bridge_names_a_wrong_ca_at_start_instead_of_waiting_for_kafka(
    tls_kafka: KafkaBroker, pki: Pki, topic: str
):
    ca = pki.other / "ca.crt"
    env = {**tls(ca, pki.client(pki.good)), "IOTML_HTTP_PORT": "0"}
    run = ensure(tls_kafka, env, topic, command=("bridge",))
    assert run.code == 1, run.err
    assert run.last_line.startswith(
        f"iotml: error: Kafka at {tls_kafka.ssl_bootstrap}: TLS: the broker's certificate "
        f"was not verified against IOTML_KAFKA_SSL_CA ({ca})"
    ), run.err
