"""Server-Sent Events: the wire format, and the fan-out of one encoded event to every page.

Each push is encoded once and the same bytes go to every client; a client that falls
``queue_size`` pushes behind is dropped (its browser reconnects and starts from a fresh
snapshot) rather than buffered without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

__all__ = ["KEEPALIVE", "Broadcaster", "Client", "encode_event"]

#: A comment line: keeps proxies from closing an idle stream, ignored by browsers.
KEEPALIVE = b": keepalive\n\n"
#: How long a browser waits before reconnecting a closed stream (ms).
RETRY_MS = 2000


def encode_event(event: str, data: Any, event_id: str | None = None) -> bytes:
    """One SSE message: ``data`` as compact JSON (one line: JSON escapes newlines)."""
    if "\n" in event or "\r" in event:
        raise ValueError("an SSE event name cannot hold a line break")
    body = json.dumps(data, separators=(",", ":"), allow_nan=False)
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {body}\n\n".encode()


class Client:
    """One connected page: a bounded queue of encoded events."""

    def __init__(self, queue_size: int) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=queue_size)
        self.dropped = False

    def offer(self, message: bytes) -> bool:
        """Queue ``message``; ``False`` (and the client dropped) when it lags too far."""
        if self.dropped:
            return False
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped = True
            return False
        return True

    def close(self) -> None:
        """End the stream at once (a waiting ``get`` gets an empty message)."""
        self.dropped = True
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(b"")

    async def stream(self, first: bytes, keepalive_s: float) -> AsyncIterator[bytes]:
        """``first``, then each queued message, with keep-alives when idle; ends when the
        client is dropped (the queue is full, so ``get`` never waits then)."""
        yield f"retry: {RETRY_MS}\n\n".encode() + first
        while not self.dropped or not self.queue.empty():
            try:
                message = await asyncio.wait_for(self.queue.get(), keepalive_s)
            except TimeoutError:
                yield KEEPALIVE
                continue
            if self.dropped:
                return
            yield message


class Broadcaster:
    """The connected clients (all on the event loop's thread)."""

    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self.clients: set[Client] = set()
        self.dropped = 0

    def connect(self) -> Client:
        client = Client(self.queue_size)
        self.clients.add(client)
        return client

    def disconnect(self, client: Client) -> None:
        self.clients.discard(client)

    def close_all(self) -> None:
        for client in list(self.clients):
            client.close()
        self.clients.clear()

    def publish(self, message: bytes) -> None:
        for client in list(self.clients):
            if not client.offer(message):
                self.clients.discard(client)
                self.dropped += 1
