"""Reaching Kafka: ``cluster_metadata`` and why a connection failed, in words a user can
act on (refused credentials, TLS files, certificates, a protocol that does not match the
listener) instead of librdkafka's generic "transport failure"."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from iotml.core.errors import IotmlError

log = logging.getLogger(__name__)
_librdkafka_log = log.getChild("librdkafka")


class KafkaUnreachable(IotmlError, RuntimeError):
    """Kafka could not be reached or refused the client; ``conclusive`` when waiting cannot
    help (refused credentials, a TLS file or certificate the client cannot use, the wrong
    security protocol for the listener)."""

    def __init__(self, message: str, conclusive: bool = False) -> None:
        super().__init__(message)
        self.conclusive = conclusive


def cluster_metadata(kafka_conf: Mapping[str, Any], timeout: float = 30.0) -> tuple[Any, Any]:
    """An ``AdminClient`` and the cluster's metadata; raises :class:`KafkaUnreachable` that says
    why Kafka could not be reached: refused credentials, a TLS file the client cannot use, a
    broker certificate not signed by the configured CA, a refused client certificate, or a
    security protocol that does not match the listener."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    where = kafka_conf.get("bootstrap.servers")
    reports = _ClientReports()
    try:
        admin = AdminClient({**kafka_conf, "error_cb": reports.error, "logger": reports})
    except KafkaException as exc:
        raise KafkaUnreachable(
            _explain_setup_error(exc.args[0].str(), kafka_conf), conclusive=True
        ) from None
    deadline = time.monotonic() + timeout
    while True:
        try:
            metadata = admin.list_topics(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
            return admin, metadata
        except KafkaException as exc:
            admin.poll(0)  # serves error_cb and the log lines
            if reports.refused:
                raise KafkaUnreachable(
                    f"Kafka at {where} refused the credentials: {reports.refused[0]}",
                    conclusive=True,
                ) from None
            cause = explain_connection_failure(reports.lines, kafka_conf)
            expired = time.monotonic() >= deadline
            if cause is not None and (cause.conclusive or expired):
                raise KafkaUnreachable(
                    f"Kafka at {where}: {cause.message}", conclusive=cause.conclusive
                ) from None
            if expired:
                raise KafkaUnreachable(f"cannot reach Kafka at {where}: {exc}") from None


def check_kafka_config(kafka_conf: Mapping[str, Any], timeout: float = 5.0) -> None:
    """Raise :class:`KafkaUnreachable` when the client's configuration cannot work (refused
    credentials, TLS files or certificates, wrong protocol); a broker that is only down is
    logged and left to the caller, which waits for it."""
    try:
        cluster_metadata(kafka_conf, timeout)
    except KafkaUnreachable as exc:
        if exc.conclusive:
            raise
        log.warning("%s; waiting for it", exc)


class _ClientReports:
    """What librdkafka reports while connecting: refused credentials from its error
    callback, and every error and log line (a plaintext client on a TLS port is only
    logged, never reported as an error). Log lines are passed on to the
    ``iotml.core.topics.librdkafka`` logger."""

    def __init__(self) -> None:
        self.refused: list[str] = []
        self.lines: list[str] = []

    def error(self, err: Any) -> None:
        from confluent_kafka import KafkaError

        if err.code() == KafkaError._AUTHENTICATION:
            self.refused.append(err.str())
        elif err.code() != KafkaError._ALL_BROKERS_DOWN:
            self._keep(err.str())

    def log(self, level: int, msg: str, *args: Any) -> None:
        """Called by librdkafka as ``logging.Logger.log`` would be."""
        self._keep(msg % args)
        _librdkafka_log.log(level, msg, *args)

    def _keep(self, line: str) -> None:
        if len(self.lines) < 500:
            self.lines.append(line)


@dataclass(frozen=True, slots=True)
class ConnectionCause:
    """Why connections to Kafka fail, in the user's terms; ``conclusive`` when retrying
    cannot help (a certificate will not become valid by waiting)."""

    message: str
    conclusive: bool


#: The setting behind each librdkafka TLS property, to name it in errors.
_TLS_SETTINGS = {
    "ssl.ca.location": "IOTML_KAFKA_SSL_CA",
    "ssl.certificate.location": "IOTML_KAFKA_SSL_CERT",
    "ssl.key.location": "IOTML_KAFKA_SSL_KEY",
}
# "[thrd:...]: ssl://host:port/bootstrap: " before librdkafka's words, "(after 3ms in
# state SSL_HANDSHAKE, 1 identical error(s) suppressed)" after them.
_BROKER_PREFIX = re.compile(r"^(?:.*\]: )?\S+/(?:bootstrap|\d+): ")
_STATE_SUFFIX = re.compile(
    r"\s*\(after \d+ms in state \w+(?:, (\d+) identical error\(s\) suppressed)?\)$"
)
# TLS alerts a broker sends when it refuses the client's certificate (or the lack of one).
_CLIENT_CERT_ALERT = re.compile(
    r"alert (bad certificate|certificate required|certificate unknown|unknown ca|"
    r"certificate expired|certificate revoked|unsupported certificate|access denied)"
)
# An OpenSSL error code and reason: "error:0A000086:SSL routines::certificate verify failed".
_OPENSSL_ERROR = re.compile(r"error:[0-9A-F]{8}:[^:]*::[^:(]*[^:(\s]")


def _words(line: str) -> tuple[str, int]:
    """librdkafka's own words in a log or error line (the OpenSSL error alone when there is
    one), and how many times it happened."""
    line = _BROKER_PREFIX.sub("", line.strip())
    times = 1
    m = _STATE_SUFFIX.search(line)
    if m is not None:
        line, times = line[: m.start()], 1 + int(m.group(1) or 0)
    ssl_error = _OPENSSL_ERROR.search(line)
    return (ssl_error.group(0) if ssl_error else line), times


def explain_connection_failure(
    lines: Sequence[str], kafka_conf: Mapping[str, Any]
) -> ConnectionCause | None:
    """The cause of failed connections in librdkafka's error and log ``lines``, or ``None``
    when they say nothing more specific than "transport failure"."""
    protocol = str(kafka_conf.get("security.protocol", "plaintext")).upper()
    ca = kafka_conf.get("ssl.ca.location")
    cert = kafka_conf.get("ssl.certificate.location")
    where = kafka_conf.get("bootstrap.servers")
    closed_early = 0
    for line in lines:
        words, times = _words(line)
        low = words.lower()
        if "certificate verify failed" in low:
            against = (
                f"IOTML_KAFKA_SSL_CA ({ca})"
                if ca
                else "the system's CA certificates (IOTML_KAFKA_SSL_CA is not set)"
            )
            return ConnectionCause(
                f"TLS: the broker's certificate was not verified against {against}: it is "
                f"signed by another CA, or it does not name the host in IOTML_KAFKA_BOOTSTRAP "
                f"({where}) [{words}]",
                conclusive=True,
            )
        alert = _CLIENT_CERT_ALERT.search(low)
        if alert is not None:
            if cert:
                why = (
                    f"the broker refused the client certificate IOTML_KAFKA_SSL_CERT ({cert}): "
                    "it is not signed by a CA the broker trusts, or it has expired"
                )
            else:
                why = (
                    "the broker requires a client certificate: set IOTML_KAFKA_SSL_CERT and "
                    "IOTML_KAFKA_SSL_KEY"
                )
            return ConnectionCause(f"TLS: {why} [alert {alert.group(1)}]", conclusive=True)
        if "connecting to a plaintext broker listener" in low or (
            "ssl handshake failed" in low and "wrong version number" in low
        ):
            return ConnectionCause(
                f"TLS: the broker does not speak TLS on this port (it is a PLAINTEXT "
                f"listener?) and IOTML_KAFKA_SECURITY_PROTOCOL is {protocol} [{words}]",
                conclusive=True,
            )
        if "handshake failure" in low or "no shared cipher" in low:
            hint = "" if cert else "; or it wants a client certificate (IOTML_KAFKA_SSL_CERT)"
            return ConnectionCause(
                f"TLS: the handshake with the broker failed: no TLS version or cipher in "
                f"common{hint} [{words}]",
                conclusive=True,
            )
        if "SSL" not in protocol and (
            "incorrect security.protocol" in low
            or ("disconnected" in low and "APIVERSION_QUERY" in line)
        ):
            closed_early += times
    if closed_early:
        # One early close can be a broker shutting down; a second one is the listener.
        return ConnectionCause(
            "the broker closes the connection before answering: the port is probably a TLS "
            f"listener, and IOTML_KAFKA_SECURITY_PROTOCOL is {protocol} (use SSL or SASL_SSL, "
            "with IOTML_KAFKA_SSL_CA)",
            conclusive=closed_early >= 2,
        )
    return None


def _encrypted_key(path: Any) -> bool:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return "ENCRYPTED" in fh.read(4096)
    except (OSError, TypeError):
        return False


def _explain_setup_error(text: str, kafka_conf: Mapping[str, Any]) -> str:
    """What a client that cannot even be created says, naming the TLS setting at fault."""
    m = re.search(r"(ssl\.[a-z.]+) failed: (.*)", text)
    if m is None or m.group(1) not in _TLS_SETTINGS:
        return f"invalid Kafka client settings: {text}"
    prop, detail = m.groups()
    setting, path = _TLS_SETTINGS[prop], kafka_conf.get(prop)
    if "key values mismatch" in detail:
        cert = kafka_conf.get("ssl.certificate.location")
        return (
            f"TLS: IOTML_KAFKA_SSL_KEY ({path}) is not the key of IOTML_KAFKA_SSL_CERT "
            f"({cert}) [{detail}]"
        )
    if prop == "ssl.key.location" and _encrypted_key(path):
        return (
            f"TLS: IOTML_KAFKA_SSL_KEY ({path}) is encrypted and IOTML_KAFKA_SSL_KEY_PASSWORD "
            f"is missing or wrong [{detail}]"
        )
    return f"TLS: {setting} ({path}) is not a usable PEM file [{detail}]"


def brokers_up(stats_json: str) -> bool | None:
    """Whether librdkafka's statistics (``stats_cb``) show a broker connection up;
    ``None`` when the statistics cannot be read."""
    try:
        brokers = json.loads(stats_json).get("brokers", {})
    except ValueError:
        return None
    return any(b.get("state") == "UP" for b in brokers.values())
