"""MQTT topic templates of `iotml egress`: one value per topic level, never a wildcard."""

from __future__ import annotations

import pytest

from bridge.egress.settings import ALERT_FIELDS, METRIC_FIELDS, EgressSettings
from bridge.egress.templates import TopicTemplate, level, slug
from iotml.core.errors import ConfigError
from iotml.core.options import build_settings

ALERTS = "iotml/{site}/{device}/alerts/{type}"
FORECASTS = "iotml/{site}/{device}/forecast/{metric}"


def alert_template(text: str = ALERTS) -> TopicTemplate:
    return TopicTemplate.parse(text, ALERT_FIELDS, ALERT_FIELDS)


def test_the_default_alert_topic_names_site_device_and_type():
    topic = alert_template().render(
        {"device": "press-7", "type": "anomaly"}, {"site": "plant-a"}, "_"
    )
    assert topic == "iotml/plant-a/press-7/alerts/anomaly"


def test_a_missing_tag_takes_the_default():
    topic = alert_template().render({"device": "press-7", "type": "anomaly"}, {}, "_")
    assert topic == "iotml/_/press-7/alerts/anomaly"


def test_an_empty_tag_takes_the_default():
    topic = alert_template().render({"device": "d", "type": "anomaly"}, {"site": ""}, "nosite")
    assert topic == "iotml/nosite/d/alerts/anomaly"


def test_any_tag_can_be_a_placeholder():
    template = TopicTemplate.parse("plants/{site}/{line}/{device}/{metric}", METRIC_FIELDS)
    topic = template.render(
        {"device": "d1", "metric": "temperature"}, {"site": "a", "line": "l3"}, "_"
    )
    assert topic == "plants/a/l3/d1/temperature"


@pytest.mark.parametrize("value", ["a/b", "a+b", "a#b", "a\x00b", "a\nb"])
def test_a_value_fills_exactly_one_level_and_is_never_a_wildcard(value):
    topic = TopicTemplate.parse(FORECASTS, METRIC_FIELDS).render(
        {"device": "d", "metric": value}, {"site": value}, "_"
    )
    assert topic.count("/") == 4
    assert not set("+#\x00\n") & set(topic)


def test_level_keeps_ordinary_text_unchanged():
    assert level("Halle 3 Süd") == "Halle 3 Süd"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("iotml/+/{device}/{type}", "cannot contain + or #"),
        ("iotml/{device}/#", "cannot contain + or #"),
        ("iotml/{device}/alerts", "lacks {type}"),
        ("iotml/{type}", "lacks {device}"),
        ("iotml/{device}/{type}/{bad name}", "not a placeholder name"),
        ("iotml/{device}/{type}}", "unbalanced"),
        ("$SYS/{device}/{type}", "belong to the broker"),
        ("", "must not be empty"),
    ],
)
def test_a_bad_template_is_refused_with_the_reason(text, fragment):
    with pytest.raises(ValueError) as info:
        alert_template(text)
    assert fragment in str(info.value)


def test_a_bad_template_setting_names_its_variable():
    with pytest.raises(ConfigError) as info:
        build_settings(EgressSettings, {"egress_alert_topic": "iotml/{device}"})
    assert "IOTML_EGRESS_ALERT_TOPIC" in str(info.value) and "lacks {type}" in str(info.value)


def test_a_forecast_template_needs_the_metric():
    with pytest.raises(ConfigError, match="IOTML_EGRESS_FORECAST_TOPIC"):
        build_settings(EgressSettings, {"egress_forecast_topic": "iotml/{device}/forecast"})


def test_slug_keeps_home_assistant_safe_ids_and_separates_the_others():
    assert slug("press-7_a") == "press-7_a"
    assert slug("a.b") != slug("a:b")
    assert slug("a.b").startswith("a_b_")
    assert all(c.isalnum() or c in "_-" for c in slug("Süd/7 #x"))
