"""Server-Sent Events: the wire format and the fan-out to pages that may lag."""

from __future__ import annotations

import asyncio
import json

import pytest

from dashboard.sse import KEEPALIVE, Broadcaster, encode_event


def test_an_event_is_its_id_name_and_one_line_of_json():
    raw = encode_event("delta", {"text": "a\nb"}, "7")
    assert raw == b'id: 7\nevent: delta\ndata: {"text":"a\\nb"}\n\n'
    data = raw.decode().split("data: ", 1)[1].strip()
    assert json.loads(data) == {"text": "a\nb"}


def test_an_event_name_with_a_line_break_is_refused():
    with pytest.raises(ValueError):
        encode_event("a\nb", {})


def test_nan_is_refused_not_sent_as_invalid_json():
    with pytest.raises(ValueError):
        encode_event("delta", {"x": float("nan")})


async def _first(n: int, stream) -> list[bytes]:
    out = []
    async for chunk in stream:
        out.append(chunk)
        if len(out) == n:
            break
    return out


def test_a_client_gets_the_snapshot_then_every_push():
    async def run() -> list[bytes]:
        hub = Broadcaster(queue_size=10)
        client = hub.connect()
        hub.publish(b"one")
        hub.publish(b"two")
        return await _first(3, client.stream(b"first", 5.0))

    chunks = asyncio.run(run())
    assert chunks[0].startswith(b"retry: ") and chunks[0].endswith(b"first")
    assert chunks[1:] == [b"one", b"two"]


def test_a_client_that_lags_too_far_is_dropped_not_buffered():
    async def run() -> tuple[Broadcaster, list[bytes]]:
        hub = Broadcaster(queue_size=2)
        client = hub.connect()
        for i in range(5):
            hub.publish(str(i).encode())
        return hub, [chunk async for chunk in client.stream(b"s", 5.0)]

    hub, chunks = asyncio.run(run())
    assert hub.dropped == 1 and not hub.clients
    assert len(chunks) == 1  # the snapshot; the stream then ends and the page reconnects


def test_an_idle_stream_gets_keepalives():
    async def run() -> list[bytes]:
        client = Broadcaster(queue_size=2).connect()
        return await _first(2, client.stream(b"s", 0.01))

    assert asyncio.run(run())[1] == KEEPALIVE


def test_closing_ends_a_waiting_stream():
    async def run() -> list[bytes]:
        hub = Broadcaster(queue_size=2)
        client = hub.connect()
        asyncio.get_running_loop().call_later(0.05, hub.close_all)
        return [chunk async for chunk in client.stream(b"s", 5.0)]

    assert len(asyncio.run(run())) == 1
