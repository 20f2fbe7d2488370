import pytest

from bridge.errors import RouteError
from bridge.routes import DEFAULT_ROUTE, RouteTable, parse_route
from iotml.core.errors import RecordError


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


@pytest.mark.parametrize(
    "topic",
    [
        "sensors/a/dev+1/temp",
        "sensors/a/dev#1/temp",
        "sensors/a/dev\x01/temp",
        "sensors/a/dev\u0085/temp",
        "sensors/a/" + "d" * 129 + "/temp",
    ],
)
def test_device_segment_breaking_the_device_id_contract_is_bad_device_id(topic: str):
    with pytest.raises(RecordError) as err:
        table().resolve(topic)
    assert err.value.reason == "bad_device_id"
    assert "topic segment {device}" in err.value.detail


def test_lookup_caches_a_rejected_topic_and_raises_each_time():
    routes = table()
    for _ in range(2):
        with pytest.raises(RecordError) as err:
            routes.lookup(b"sensors/a/dev+1/temp")
        assert err.value.reason == "bad_device_id"


def test_key_built_by_a_template_must_keep_the_device_id_contract():
    routes = table("factory/{site}/{device}=readings:{site}.{device}")
    with pytest.raises(RecordError) as err:
        routes.resolve("factory/" + "s" * 100 + "/" + "d" * 40)
    assert err.value.reason == "bad_device_id"
    assert "key from template" in err.value.detail


@pytest.mark.parametrize("template", ["{site}/{device}", "{site}+{device}", "#{device}"])
def test_key_template_with_a_character_no_device_id_may_hold_is_malformed(template: str):
    with pytest.raises(RouteError):
        parse_route(f"factory/{{site}}/{{device}}=readings:{template}", "readings")


def test_kafka_topic_template_yielding_an_invalid_topic_name_is_bad_kafka_topic():
    routes = table("plant/{site}/{device}=readings-{site}")
    assert routes.resolve("plant/north/m1") is not None
    with pytest.raises(RecordError) as err:
        routes.resolve("plant/no rth$/m1")
    assert err.value.reason == "bad_kafka_topic"
