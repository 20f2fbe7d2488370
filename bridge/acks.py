"""MQTT acknowledgements released only after Kafka confirmed, in receive order.

MQTT requires PUBACKs in the order the PUBLISH packets arrived, while Kafka confirms
records out of order (different partitions, retries). Messages are grouped in
:class:`AckBatch` es, one per read of the MQTT socket; a batch's acks are released when
it is sealed (every record of it was handed to the producer) and every record of it and
of every earlier batch is confirmed. A batch never sealed (its production was cut short)
is never released: its messages stay unacknowledged and the broker redelivers them. A
batch received on an earlier MQTT connection is never acked on the new one (its packet
ids mean nothing there); the broker redelivers those messages to the persistent session.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from typing import Any


class AckBatch:
    """Messages read together. ``delivered`` is the confluent-kafka delivery callback.

    ``remaining`` counts the records produced and not yet confirmed, plus one until
    :meth:`seal`: a batch whose records are still being produced, or whose production
    stopped half way, is never complete, even before its first record is produced.
    """

    __slots__ = (
        "dead",
        "failures",
        "generation",
        "mids",
        "readings",
        "remaining",
        "size",
        "started",
    )

    def __init__(
        self, mids: list[int], size: int, generation: int, failures: list[tuple[Any, Any, Any]]
    ) -> None:
        self.mids = mids  # packet ids to ack (QoS 1), in receive order
        self.size = size  # messages in the batch, acked or not (QoS 0)
        self.remaining = 1  # records produced and not yet confirmed, + 1 until sealed
        self.readings = 0  # records for the readings topics
        self.dead = 0  # records for the dead-letter topic
        self.generation = generation
        self.failures = failures
        self.started = time.monotonic()

    def seal(self) -> None:
        """Every record of the batch has been produced: it completes once they are confirmed."""
        self.remaining -= 1

    def delivered(self, err: Any, msg: Any) -> None:
        if err is None:
            self.remaining -= 1
        else:
            self.failures.append((self, err, msg))


class AckQueue:
    """Batches in receive order."""

    def __init__(self) -> None:
        self._batches: deque[AckBatch] = deque()
        self.failures: list[tuple[AckBatch, Any, Any]] = []
        self.in_flight = 0  # messages read and not yet released

    def __len__(self) -> int:
        return len(self._batches)

    def open(self, mids: list[int], size: int, generation: int) -> AckBatch:
        batch = AckBatch(mids, size, generation, self.failures)
        self._batches.append(batch)
        self.in_flight += size
        return batch

    def ready(self) -> Iterator[AckBatch]:
        """Pop the sealed batches at the head whose records are all confirmed, oldest first."""
        batches = self._batches
        while batches and batches[0].remaining == 0:
            batch = batches.popleft()
            self.in_flight -= batch.size
            yield batch

    def unreleased(self) -> tuple[int, int]:
        """``(messages, QoS 1 messages)`` read and not yet released."""
        return self.in_flight, sum(len(b.mids) for b in self._batches)
