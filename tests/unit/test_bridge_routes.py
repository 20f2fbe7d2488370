import pytest

from bridge.errors import RouteError
from bridge.routes import DEFAULT_ROUTE, RouteTable, parse_route


def table(*routes: str) -> RouteTable:
    return RouteTable.parse(routes or [DEFAULT_ROUTE], "readings")


def test_default_route_maps_device_metric_and_tags():
    target = table().resolve("sensors/plant-a/dev-7/temperature")
    assert target is not None
    assert target.kafka_topic == "readings"
    assert target.key == b"dev-7"
    assert target.device == "dev-7"
    assert target.metric == "temperature"
    assert target.tags == {"site": "plant-a"}


def test_topic_not_matching_any_route_resolves_to_none():
    assert table().resolve("sensors/plant-a/dev-7") is None
    assert table().resolve("other/plant-a/dev-7/temperature") is None
    assert table().resolve("sensors/plant-a/dev-7/temperature/extra") is None


def test_named_segments_fill_kafka_topic_and_key_templates():
    target = table("factory/{site}/{line}/{device}=readings-{site}:{site}.{device}").resolve(
        "factory/north/l1/m3"
    )
    assert target is not None
    assert target.kafka_topic == "readings-north"
    assert target.key == b"north.m3"
    assert target.tags == {"site": "north", "line": "l1"}


def test_first_matching_route_wins():
    routes = table("sensors/lab/{device}/{metric}=lab", DEFAULT_ROUTE)
    first = routes.resolve("sensors/lab/d1/temp")
    second = routes.resolve("sensors/plant/d1/temp")
    assert first is not None and first.kafka_topic == "lab"
    assert second is not None and second.kafka_topic == "readings"


def test_pattern_without_device_takes_key_from_payload():
    target = table("gateway/{site}/#").resolve("gateway/s1/a/b")
    assert target is not None
    assert target.key is None and target.device is None


def test_plus_and_hash_become_the_mqtt_filter():
    assert parse_route(DEFAULT_ROUTE, "r").mqtt_filter == "sensors/+/+/+"
    assert parse_route("a/+/{device}/#=t", "r").mqtt_filter == "a/+/+/#"


def test_empty_segment_does_not_match_a_named_segment():
    assert table().resolve("sensors//dev/temperature") is None


@pytest.mark.parametrize(
    "bad",
    [
        "sensors/{site}/{device}=t-{zone}",  # zone not captured
        "sensors/{site}/{site}",  # duplicate name
        "sensors/te+mp/{device}",  # wildcard inside a level
        "sensors/{device}=bad topic",  # Kafka topic with a space
        "$share/g/sensors/{device}",  # share group belongs in its own setting
        "=readings",  # no pattern
    ],
)
def test_malformed_routes_are_rejected_with_a_reason(bad: str):
    with pytest.raises(RouteError):
        parse_route(bad, "readings")


def test_lookup_caches_by_raw_topic_and_rejects_invalid_utf8():
    routes = table()
    assert routes.lookup(b"sensors/a/b/c") is routes.lookup(b"sensors/a/b/c")
    with pytest.raises(UnicodeDecodeError):
        routes.lookup(b"sensors/\xff/b/c")
