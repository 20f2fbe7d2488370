"""The core every service builds on: record contracts and their JSON Schemas, settings,
topics, event-time rules, errors, HTTP/metrics helpers and the fleet's physical model.

It imports no service (``bridge``, ``processor``, ``models``) and nothing of the
application layer (``iotml.cli``, ``iotml.demo``, ``iotml.stack``): the import contract
in ``pyproject.toml`` holds it to that.
"""
