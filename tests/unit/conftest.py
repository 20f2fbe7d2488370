"""Fixtures of the broker-free tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import bridge.delivery
import bridge.runtime
import bridge.translate
from bridge._mqtt import Message
from tests.bridgefakes import BOOM, FakeMqtt, FakeProducer


@pytest.fixture
def failing_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """The payload parser raises an exception nobody foresaw on the payload ``boom``."""
    real = bridge.translate.parse_payload

    def parse(payload: bytes, *args: Any, **kwargs: Any) -> Any:
        if payload == BOOM:
            raise ZeroDivisionError("injected \ud800 failure")
        return real(payload, *args, **kwargs)

    monkeypatch.setattr(bridge.translate, "parse_payload", parse)


@pytest.fixture
def producer(monkeypatch: pytest.MonkeyPatch) -> FakeProducer:
    fake = FakeProducer()
    monkeypatch.setattr(bridge.delivery, "Producer", fake)
    return fake


@pytest.fixture
def mqtt(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FakeMqtt]]:
    def make(messages: list[Message], per_read: int = 1) -> FakeMqtt:
        fake = FakeMqtt(messages, per_read)
        monkeypatch.setattr(bridge.runtime, "make_client", fake)
        return fake

    yield make
