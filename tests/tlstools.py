"""A private PKI and a Mosquitto that requires TLS, a client certificate and a password."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from iotml.stack.mosquitto import find_mosquitto
from iotml.stack.procs import free_port, port_open

USERNAME = "bridge-user"

OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
"""

MOSQUITTO_CONF = """\
per_listener_settings false
listener {port} 127.0.0.1
cafile {dir}/ca.crt
certfile {dir}/server.crt
keyfile {dir}/server.key
require_certificate true
use_identity_as_username false
allow_anonymous false
password_file {dir}/passwd
user {user}
persistence false
log_dest file {dir}/mosquitto.log
log_type all
connection_messages true
"""


def run(*args: str | Path) -> None:
    subprocess.run([str(a) for a in args], check=True, capture_output=True, timeout=30)


def make_pki(d: Path) -> None:
    """A test CA, a server certificate for localhost/127.0.0.1 and a client certificate."""
    assert shutil.which("openssl"), "these tests need the openssl command line"
    cnf = d / "openssl.cnf"
    cnf.write_text(OPENSSL_CNF)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    run("openssl", "req", "-x509", "-new", *ec, "-config", cnf, "-extensions", "ca",
        "-subj", "/CN=iotml test CA", "-days", "2", "-keyout", d / "ca.key", "-out", d / "ca.crt")  # fmt: skip
    for name, cn in (("server", "localhost"), ("client", "iotml-bridge")):
        run("openssl", "req", "-new", *ec, "-config", cnf, "-subj", f"/CN={cn}",
            "-keyout", d / f"{name}.key", "-out", d / f"{name}.csr")  # fmt: skip
        run("openssl", "x509", "-req", "-in", d / f"{name}.csr", "-CA", d / "ca.crt",
            "-CAkey", d / "ca.key", "-set_serial", str(uuid.uuid4().int >> 64), "-days", "2",
            "-extfile", cnf, "-extensions", name, "-out", d / f"{name}.crt")  # fmt: skip


@dataclass
class SecureMosquitto:
    dir: Path
    port: int
    password: str
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"mqtts://localhost:{self.port}"

    @property
    def ca(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def cert(self) -> Path:
        return self.dir / "client.crt"

    @property
    def key(self) -> Path:
        return self.dir / "client.key"

    def set_password(self, password: str) -> None:
        """Rewrite the password file and have Mosquitto reload it (SIGHUP)."""
        run("mosquitto_passwd", "-b", "-c", self.dir / "passwd", USERNAME, password)
        self.password = password
        self.proc.send_signal(signal.SIGHUP)

    def log(self) -> str:
        path = self.dir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def client(self, *, cert: bool = True, password: str | None = None) -> mqtt.Client:
        """A TLS client; ``password=None`` connects without credentials."""
        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"pub-{os.urandom(4).hex()}",
            protocol=mqtt.MQTTv5,
        )
        c.tls_set(
            ca_certs=str(self.ca),
            certfile=str(self.cert) if cert else None,
            keyfile=str(self.key) if cert else None,
        )
        if password is not None:
            c.username_pw_set(USERNAME, password)
        return c


@pytest.fixture
def secure_mosquitto(tmp_path: Path) -> Iterator[SecureMosquitto]:
    d = tmp_path / "mosquitto"
    d.mkdir()
    make_pki(d)
    password = f"pw-{uuid.uuid4().hex}"
    run("mosquitto_passwd", "-b", "-c", d / "passwd", USERNAME, password)
    port = free_port()
    conf = d / "mosquitto.conf"
    conf.write_text(MOSQUITTO_CONF.format(port=port, dir=d, user=getpass.getuser()))
    with open(d / "mosquitto.out", "wb") as out:
        proc = subprocess.Popen(
            [find_mosquitto(), "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", port):
            assert proc.poll() is None, (d / "mosquitto.out").read_text()
            assert time.monotonic() < deadline, "mosquitto not listening"
            time.sleep(0.05)
        yield SecureMosquitto(d, port, password, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def accepted(broker: SecureMosquitto, client: mqtt.Client) -> bool:
    """Whether the broker accepts ``client``'s connection (CONNACK success)."""
    outcome: list[bool] = []
    client.on_connect = lambda c, u, f, reason, p: outcome.append(not reason.is_failure)
    try:
        client.connect("localhost", broker.port)
        deadline = time.monotonic() + 5
        while not outcome and time.monotonic() < deadline:
            if client.loop(0.1) != mqtt.MQTT_ERR_SUCCESS:
                break
    except OSError:
        return False
    finally:
        client.disconnect()
    return outcome == [True]
