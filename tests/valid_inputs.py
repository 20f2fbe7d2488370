"""Valid inputs in varied shapes, to mix with the hostile corpus (:mod:`tests.hostile`)."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.hostile import DAY_MS, DEFAULT_TOPIC, GATEWAY_TOPIC, NOW, reading


def _iso(ms: int) -> bytes:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().encode()


def valid_payloads(count: int = 24, now: int = NOW) -> list[tuple[str, bytes]]:
    """``count`` (topic, payload) pairs the bridge accepts at ``now``, in varied shapes."""
    shapes = [
        (DEFAULT_TOPIC, b"21.5"),
        (DEFAULT_TOPIC, b'{"value":3,"ts":%d}' % (now - 1000)),
        (DEFAULT_TOPIC, b'{"ts":%d,"temperature":71.5,"load":0.5}' % (now // 1000)),
        (DEFAULT_TOPIC, b'{"ts":"%s","rpm":1200}' % _iso(now - 60_000)),
        ("sensors/plant-a/aa:bb:cc:dd:ee:ff/temperature", b'{"temperature" : 20}'),
        ("sensors/plant-a/" + "d" * 128 + "/temperature", b"1"),
        ("sensors/plant-a/" + "é" * 64 + "/temperature", b"1"),
        (DEFAULT_TOPIC, b'{"metrics":{"a":1,"b":2.5},"tags":{"fw":"2.1:rc"}}'),
        (GATEWAY_TOPIC, b'{"device_id":"\\ud83d\\ude00-7","t":1}'),
        (GATEWAY_TOPIC, b'{"device_id":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[","t":1}'),
        (GATEWAY_TOPIC, valid_records(1, now)[0]),
        (GATEWAY_TOPIC, b'{"device_id":"gw-9","rpm":1.5e3,"ts":%d}' % (now * 1000)),
    ]
    return [shapes[i % len(shapes)] for i in range(count)]


def valid_records(count: int = 24, now: int = NOW) -> list[bytes]:
    """``count`` records of ``readings`` the processor accepts at ``now``."""
    shapes = [
        reading(ts=b"%d" % now),
        reading(ts=b"%d" % (now - DAY_MS), tags=b'{"site":"plant-a"}'),
        reading(ts=b"%d" % now, device=b'"aa:bb:cc:dd:ee:ff"', metrics=b'{"t":1,"load":-2.5e-3}'),
        reading(ts=b"%d" % now, device=('"' + "é" * 64 + '"').encode()),
        reading(ts=b"%d" % now, device=b'"%s"' % (b"d" * 128)),
        reading(ts=b"%d" % now, device=b'"\\ud83d\\ude00"', tags=b'{"note":"a\\":b"}'),
        reading(ts=b"%d" % now, metrics=b'{"temp \\u00a0C":18446744073709551616}'),
        b'{ "v" : 1 , "device_id" : "d-1" , "ts" : %d , "metrics" : { "t" : 1 } }' % now,
    ]
    return [shapes[i % len(shapes)] for i in range(count)]
