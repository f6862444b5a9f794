"""Servers for the client's tests: the protocol suite's `start` fixture runs
mqd (MQD_BINARY, or build/mqd) on a free loopback port, and stops it after
the test, checking that it exits cleanly."""
import importlib.util
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT_DIR = os.path.dirname(HERE)
PROTOCOL_DIR = os.path.join(os.path.dirname(os.path.dirname(CLIENT_DIR)), "tests", "protocol")
sys.path[:0] = [CLIENT_DIR, PROTOCOL_DIR]

from mqd_client import Client  # noqa: E402


def _protocol_conftest():
    spec = importlib.util.spec_from_file_location(
        "protocol_conftest", os.path.join(PROTOCOL_DIR, "conftest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


start = _protocol_conftest().start


@pytest.fixture
def server(start):
    return start()


@pytest.fixture
def connect(request):
    """Opens clients of the `server` fixture's server, or of the port given;
    closes them after the test."""
    made = []

    def _connect(port=None, **kwargs):
        if port is None:
            port = request.getfixturevalue("server").port
        made.append(Client("127.0.0.1", port, **kwargs))
        return made[-1]
    yield _connect
    for c in made:
        c.close()
