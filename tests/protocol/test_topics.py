"""PROTOCOL.md, "Topics"."""
from mqd_harness import OK, send, subscribe


def test_topics_exist_implicitly_with_their_own_index_from_zero(clients, topic):
    p = clients()
    a, b = clients(), clients()
    subscribe(a, topic + "a")
    subscribe(b, topic + "b")
    for i in range(3):
        send(p, topic + "a", "x")
    send(p, topic + "b", "y")
    assert [m["index"] for m in a.lines(3)] == [0, 1, 2]
    assert b.line()["index"] == 0


def test_subscribing_twice_adds_only_a_replay(clients, topic):
    p, s = clients(), clients()
    send(p, topic, "cached")
    subscribe(s, topic)
    assert s.line()["msg"] == "cached"
    subscribe(s, topic)
    assert s.line()["msg"] == "cached"   # the replay again
    send(p, topic, "live")
    assert s.line()["msg"] == "live"     # once, not twice
    s.sync()


def test_topics_are_compared_by_decoded_value(clients, topic):
    p, s = clients(), clients()
    subscribe(s, "A" + topic)
    p.send('{"command":"send","topic":"\\u0041%s","msg":"m","delivery":"all"}\n' % topic)
    assert p.line() == OK
    line = s.raw_line()
    assert b'"topic":"\\u0041' in line   # delivered as sent
    s.sync()


def test_cache_holds_the_last_cache_size_messages(start):
    server = start("--cache-size", "2")
    p, s = server.client(), server.client()
    for i in range(5):
        send(p, "t", str(i))
    subscribe(s, "t")
    assert [m["msg"] for m in s.lines(2)] == ["3", "4"]
    s.sync()
    p.close(); s.close()


def test_drop_in_command_line_port_and_cache_size(start):
    server = start("{port}", "1")   # as the aiomemq test suites start it
    p, s = server.client(), server.client()
    send(p, "t", "a"); send(p, "t", "b")
    subscribe(s, "t")
    assert s.line()["msg"] == "b"
    s.sync()
    p.close(); s.close()


def test_cache_size_zero_caches_nothing(start):
    server = start("--cache-size", "0")
    p, s = server.client(), server.client()
    send(p, "t", "a")
    send(p, "t", "b", delivery="one")
    subscribe(s, "t")
    s.sync()
    send(p, "t", "c")
    assert s.line()["index"] == 2
    p.close(); s.close()
