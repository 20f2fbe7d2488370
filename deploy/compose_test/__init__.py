"""The compose test: ``docker-compose.yml`` run for real on a container engine (``make
compose-test``). ``check`` is the static pre-check, ``driver`` the test itself."""
