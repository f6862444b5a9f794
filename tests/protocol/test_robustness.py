"""No client can hurt the others: stalled readers, resets mid-delivery,
connection storms."""
import resource
import socket
import struct

from mqd_harness import OK, send, subscribe


def test_a_stalled_subscriber_slows_nobody_and_memory_stays_bounded(start):
    server = start("--max-output", "8m")
    stalled, reader, p = server.client(), server.client(), server.client()
    subscribe(stalled, "t", cache=False)
    subscribe(reader, "t", cache=False)
    baseline = server.rss_kib()
    size, n, batch = 50000, 1000, 20   # 50 MB published, 1 MB at a time
    line = '{"command":"send","topic":"t","msg":"%s","delivery":"all","cache":false}\n' % (
        "y" * size)
    for first in range(0, n, batch):
        p.send(line * batch)
        assert p.lines(batch) == [OK] * batch
        assert [m["index"] for m in reader.lines(batch)] == list(range(first, first + batch))
        assert server.rss_kib() - baseline < 64 * 1024
    assert "slow consumer" in server.stderr()   # the stalled one was cut off
    for c in (stalled, reader, p):
        c.close()


def test_resets_in_the_middle_of_large_deliveries(start):
    server = start()
    victims = [server.client() for _ in range(5)]
    survivors = [server.client() for _ in range(2)]
    p = server.client()
    for c in victims + survivors:
        subscribe(c, "big", cache=False)
    big = "z" * 500000
    for i in range(10):
        send(p, "big", big, cache=False)
        if i == 3:
            for v in victims:
                v.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                v.close()
    for s in survivors:
        assert [m["index"] for m in s.lines(10)] == list(range(10))
    p.close()
    for s in survivors:
        s.close()


def test_a_thousand_clients_come_and_go_at_once(start):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    server = start()
    socks = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(1000)]
    for i, s in enumerate(socks):
        s.sendall(b'{"command":"subscribe","topic":"storm-%d"}\n{"command":"subscribe","topic":"all"}\n' % i)
    for s in socks:
        s.settimeout(10)
        got = b""
        while got.count(b"\r\n") < 2:
            got += s.recv(100)
        assert got == b'{"success": true}\r\n' * 2
    for s in socks:
        s.close()
    c = server.client()
    for _ in range(20):
        send(c, "all", "m", delivery="one")
    late = server.client()
    subscribe(late, "all")
    # every one of the thousand has left: all 20 were cached for the late one
    assert len(late.lines(20)) == 20
    c.close()
    late.close()
