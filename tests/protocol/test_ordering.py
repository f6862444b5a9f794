"""PROTOCOL.md, "Ordering"."""
import json

from mqd_harness import BAD_JSON, MALFORMED, OK, subscribe


def test_replies_follow_command_order(clients, topic):
    c = clients()
    batch = [
        '{"command":"subscribe","topic":"%s-x"}' % topic,
        "{",
        '{"command":"unsubscribe","topic":"%s-x"}' % topic,
        '{"command":"send"}',
        '{"command":"send","topic":"%s-y","msg":"m","delivery":"all"}' % topic,
    ]
    c.send("\n".join(batch) + "\n")
    assert c.lines(5) == [OK, BAD_JSON, OK, MALFORMED, OK]


def test_subscribe_reply_comes_before_the_replay(clients, topic):
    p, s = clients(), clients()
    p.send('{"command":"send","topic":"%s","msg":"m","delivery":"all"}\n' % topic)
    assert p.line() == OK
    s.send('{"command":"subscribe","topic":"%s"}\n' % topic)
    assert s.line() == OK
    assert s.line()["msg"] == "m"


def test_every_subscriber_sees_index_order_under_a_burst(clients, topic):
    subs = [clients() for _ in range(3)]
    for s in subs:
        subscribe(s, topic, cache=False)
    pubs = [clients(), clients()]
    n = 1000
    for k, p in enumerate(pubs):
        p.send("".join(json.dumps({"command": "send", "topic": topic, "msg": f"{k}-{i}",
                                   "delivery": "all", "cache": False}) + "\n"
                       for i in range(n)))
    for p in pubs:
        assert p.lines(n) == [OK] * n
    for s in subs:
        got = s.lines(2 * n)
        assert [m["index"] for m in got] == list(range(2 * n))
        for k in range(2):   # each publisher's messages in its own order too
            mine = [m["msg"] for m in got if m["msg"].startswith(f"{k}-")]
            assert mine == [f"{k}-{i}" for i in range(n)]
