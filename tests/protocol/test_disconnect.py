"""PROTOCOL.md, "Disconnect"."""
import socket
import struct

import pytest

from mqd_harness import send, subscribe


@pytest.fixture
def server(start):
    # at debug level the server logs each close: tests wait for it, not a sleep
    return start("--log-level", "debug")


def address(client):
    return "127.0.0.1:%d" % client.sock.getsockname()[1]


def close(server, client, abort=False):
    where = address(client)
    if abort:   # RST instead of FIN
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()
    server.wait_for_log(f"client {where} closed")


def test_a_closed_subscriber_leaves_every_topic(server, topic):
    gone, stays, p = server.client(), server.client(), server.client()
    for t in (topic + "1", topic + "2"):
        subscribe(gone, t)
        subscribe(stays, t)
    close(server, gone)
    for t in (topic + "1", topic + "2"):
        for i in range(30):
            send(p, t, str(i), delivery="one")
        assert [m["msg"] for m in stays.lines(30)] == [str(i) for i in range(30)]
    stays.sync()


def test_a_reset_subscriber_leaves_too(server, topic):
    gone, p = server.client(), server.client()
    subscribe(gone, topic)
    close(server, gone, abort=True)
    for _ in range(50):
        send(p, topic, "cached for later", delivery="one")
    late = server.client()
    subscribe(late, topic)
    assert len(late.lines(50)) == 50
    late.sync()


def test_queued_lines_are_dropped_and_others_unaffected(server, topic):
    quiet, reader, p = server.client(), server.client(), server.client()
    subscribe(quiet, topic)
    subscribe(reader, topic)
    for i in range(200):
        send(p, topic, "x" * 1000)
    close(server, quiet, abort=True)
    assert len(reader.lines(200)) == 200
    send(p, topic, "after")
    assert reader.line()["msg"] == "after"
