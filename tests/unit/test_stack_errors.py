"""Missing system tools give an error that names the command installing them."""

from __future__ import annotations

import pytest

from iotml.core.errors import StackError
from iotml.stack import jars, mosquitto


def test_missing_java_names_the_install_command(monkeypatch):
    monkeypatch.setattr(jars.shutil, "which", lambda _name: None)
    with pytest.raises(StackError, match="apt-get install -y openjdk-17-jre-headless"):
        jars.require("java")


def test_missing_maven_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setattr(jars.shutil, "which", lambda _name: None)
    with pytest.raises(StackError, match="apt-get install -y maven"):
        jars.kafka_libs(tmp_path, "4.1.1", quiet=True)


def test_missing_mosquitto_names_the_install_command(monkeypatch):
    monkeypatch.setattr(mosquitto.shutil, "which", lambda _name: None)
    monkeypatch.setattr(mosquitto.Path, "exists", lambda _self: False)
    with pytest.raises(StackError, match="apt-get install -y mosquitto"):
        mosquitto.find_mosquitto()
