"""A real Apache Kafka 4 broker (KRaft, combined broker+controller, single node) as a process."""

from __future__ import annotations

import base64
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from iotml.core.errors import StackError
from iotml.stack import procs
from iotml.stack.jars import kafka_libs, require

_LOG4J = """\
rootLogger.level=WARN
rootLogger.appenderRef.stdout.ref=STDOUT
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
logger.kafka.name=kafka.server.KafkaServer
logger.kafka.level=INFO
"""


@dataclass
class KafkaBroker(procs.ManagedProcess):
    """One single-node KRaft broker whose log directory persists across restarts."""

    data_dir: Path
    port: int = 9092
    controller_port: int = 9093
    version: str = "4.1.1"
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "iotml")
    heap: str = "512m"
    host: str = "127.0.0.1"
    #: Optional SASL/PLAIN listener (``SASL_PLAINTEXT``) next to the plaintext one, with
    #: these ``{user: password}`` accounts; authentication only, no authorizer.
    sasl_users: dict[str, str] | None = None
    sasl_port: int | None = None
    #: Optional TLS listener (``SSL``) on ``ssl_port``: the broker's certificate chain and
    #: its unencrypted PKCS#8 key as PEM files. With ``ssl_client_ca`` the listener requires
    #: a client certificate signed by that CA (mTLS).
    ssl_port: int | None = None
    ssl_cert: Path | None = None
    ssl_key: Path | None = None
    ssl_client_ca: Path | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def sasl_bootstrap(self) -> str:
        if self.sasl_port is None:
            raise StackError("this broker has no SASL listener (set sasl_port and sasl_users)")
        return f"{self.host}:{self.sasl_port}"

    @property
    def ssl_bootstrap(self) -> str:
        if self.ssl_port is None:
            raise StackError("this broker has no TLS listener (set ssl_port, ssl_cert, ssl_key)")
        return f"{self.host}:{self.ssl_port}"

    def _ssl_lines(self) -> list[str]:
        if self.ssl_port is None or self.ssl_cert is None or self.ssl_key is None:
            return []
        # A PEM key store is one file holding the key and then the certificate chain.
        keystore = self.data_dir / "ssl-keystore.pem"
        keystore.touch(mode=0o600)
        keystore.write_text(self.ssl_key.read_text() + self.ssl_cert.read_text())
        lines = ["ssl.keystore.type=PEM", f"ssl.keystore.location={keystore}"]
        if self.ssl_client_ca is not None:
            lines += [
                "ssl.truststore.type=PEM",
                f"ssl.truststore.location={self.ssl_client_ca}",
                "ssl.client.auth=required",
            ]
        return lines

    def _sasl_lines(self) -> list[str]:
        if not self.sasl_users or self.sasl_port is None:
            return []
        users = " ".join(f'user_{name}="{pw}"' for name, pw in self.sasl_users.items())
        return [
            "sasl.enabled.mechanisms=PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config="
            f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};",
        ]

    @property
    def _props(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "kafka.log"

    NAME = "kafka"

    def _marker(self) -> str:
        return str(self._props)

    def _write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        sasl = self._sasl_lines()
        ssl = self._ssl_lines()
        extra = f",SASL_PLAINTEXT://{self.host}:{self.sasl_port}" if sasl else ""
        extra += f",SSL://{self.host}:{self.ssl_port}" if ssl else ""
        self._props.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@{self.host}:{self.controller_port}",
                    f"listeners=PLAINTEXT://{self.host}:{self.port},"
                    f"CONTROLLER://{self.host}:{self.controller_port}{extra}",
                    f"advertised.listeners=PLAINTEXT://{self.host}:{self.port}{extra}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
                    + (",SASL_PLAINTEXT:SASL_PLAINTEXT" if sasl else "")
                    + (",SSL:SSL" if ssl else ""),
                    *sasl,
                    *ssl,
                    f"log.dirs={self.data_dir / 'logs'}",
                    # One node: internal topics (offsets, transactions for exactly-once)
                    # cannot have more replicas than brokers.
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=10",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "transaction.state.log.num.partitions=10",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    # Topics come from `iotml topics ensure`; auto-created ones have one
                    # partition, which processor replicas cannot share.
                    "auto.create.topics.enable=false",
                    "group.initial.rebalance.delay.ms=0",
                    "num.partitions=1",
                    "log.flush.interval.messages=9223372036854775807",
                    "",
                ]
            )
        )
        (self.data_dir / "log4j2.properties").write_text(_LOG4J)

    def _java(self, main: str, *args: str) -> list[str]:
        libs = kafka_libs(self.cache_dir, self.version)
        return [
            require("java"),
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            "-cp",
            f"{libs}/*",
            main,
            *args,
        ]

    def _format(self) -> None:
        if (self.data_dir / "logs" / "meta.properties").exists():
            return
        cluster_id = "-"
        while cluster_id.startswith("-"):  # "-..." would be parsed as an option by the tool
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        proc = subprocess.run(
            self._java(
                "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self._props)
            ),
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise StackError(f"formatting Kafka storage failed:\n{proc.stdout}{proc.stderr}")

    def start(self, wait: bool = True, timeout: float = 120.0) -> None:
        """Start the broker (idempotent) and wait until a client can produce and consume."""
        if self.running():
            if wait:
                self.wait_ready(timeout)
            return
        if procs.port_open(self.host, self.port):
            raise StackError(f"port {self.port} is taken by another process; set another port")
        if (self.sasl_users is None) != (self.sasl_port is None):
            raise StackError("sasl_users and sasl_port go together: set both or neither")
        if len({self.ssl_port is None, self.ssl_cert is None, self.ssl_key is None}) > 1:
            raise StackError("ssl_port, ssl_cert and ssl_key go together: set all or none")
        self._write_config()
        self._format()
        self._spawn(self._java("kafka.Kafka", str(self._props)), self.log_file)
        if wait:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until a topic can be created and a record produced and consumed."""
        from confluent_kafka import Consumer, KafkaException, Producer
        from confluent_kafka.admin import AdminClient, NewTopic

        deadline = time.monotonic() + timeout
        conf = {"bootstrap.servers": self.bootstrap, "log_level": 0}
        topic = "__iotml_probe"
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise StackError(f"Kafka exited at start; see {self.log_file}:\n{self._tail()}")
            try:
                admin = AdminClient(conf)
                md = admin.list_topics(timeout=2)
                if topic not in md.topics:
                    for f in admin.create_topics([NewTopic(topic, 1, 1)]).values():
                        try:
                            f.result(10)
                        except KafkaException as exc:
                            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                                raise
                producer = Producer({**conf, "acks": "all", "message.timeout.ms": 10000})
                marker = uuid.uuid4().hex.encode()
                producer.produce(topic, marker)
                if producer.flush(10) != 0:
                    raise KafkaException("probe not delivered")
                consumer = Consumer(
                    {
                        **conf,
                        "group.id": f"probe-{uuid.uuid4().hex}",
                        "auto.offset.reset": "earliest",
                    }
                )
                try:
                    consumer.subscribe([topic])
                    end = time.monotonic() + 15
                    while time.monotonic() < end:
                        msg = consumer.poll(0.5)
                        if msg is not None and not msg.error() and msg.value() == marker:
                            return
                finally:
                    consumer.close()
            except KafkaException:
                pass
            if time.monotonic() > deadline:
                raise StackError(f"Kafka not ready after {timeout:.0f}s; see {self.log_file}")
            time.sleep(0.5)

    def _tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def restart(self, timeout: float = 120.0) -> None:
        self.stop()
        self.start(timeout=timeout)
