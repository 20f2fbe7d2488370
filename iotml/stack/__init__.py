"""The local stack: a real Apache Kafka 4 (KRaft, single node) and Mosquitto, as processes."""

from iotml.stack.kafka import KafkaBroker
from iotml.stack.mosquitto import MosquittoBroker
from iotml.stack.settings import StackSettings

__all__ = ["KafkaBroker", "MosquittoBroker", "StackSettings"]
