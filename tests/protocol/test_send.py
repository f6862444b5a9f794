"""PROTOCOL.md, "send"."""
import json

from mqd_harness import OK, send, subscribe


def test_index_is_used_by_every_accepted_send_even_unheard(clients, topic):
    p = clients()
    send(p, topic, "nobody", cache=False)
    send(p, topic, "nobody either", delivery="one", cache=False)
    s = clients()
    subscribe(s, topic)
    s.sync()
    send(p, topic, "heard")
    assert s.line()["index"] == 2


def test_failed_sends_use_no_index(clients, topic):
    p, s = clients(), clients()
    subscribe(s, topic)
    p.send('{"command":"send","topic":"%s","msg":"m","delivery":"bad"}\n' % topic)
    p.line()
    send(p, topic, "m")
    assert s.line()["index"] == 0


def test_delivered_line_is_the_send_object_plus_index(clients, topic):
    p, s = clients(), clients()
    subscribe(s, topic)
    send(p, topic, "hello")
    assert s.line() == {"command": "send", "topic": topic, "msg": "hello",
                        "delivery": "all", "index": 0}
    send(p, topic, "again", cache=True)
    assert s.line() == {"command": "send", "topic": topic, "msg": "again",
                        "delivery": "all", "cache": True, "index": 1}


def test_msg_and_topic_arrive_byte_exact(clients, topic):
    p, s = clients(), clients()
    raw_topic = topic + '\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\uD83D\\uDE00é😀'
    subscribe(s, json.loads('"%s"' % raw_topic))
    raw_msg = 'a\\u0000b\\ud83d\\ude00\\n\\"x\\u2028 é😀 \\/'
    line = '{"command":"send","topic":"%s","msg":"%s","delivery":"all"}\n' % (raw_topic, raw_msg)
    p.send(line.encode())
    assert p.line() == OK
    delivered = s.raw_line()
    assert ('"msg":"%s"' % raw_msg).encode() in delivered
    assert ('"topic":"%s"' % raw_topic).encode() in delivered
    got = json.loads(delivered)
    assert got["msg"] == json.loads('"%s"' % raw_msg)
    assert got["topic"] == json.loads('"%s"' % raw_topic)


def test_all_reaches_every_subscriber_and_the_sender_too(clients, topic):
    subs = [clients() for _ in range(4)]
    for s in subs:
        subscribe(s, topic)
    sender = subs[0]
    sender.cmd(command="send", topic=topic, msg="m", delivery="all")
    # PROTOCOL.md send 5: the reply comes after the message was queued
    assert sender.line()["msg"] == "m"
    assert sender.line() == OK
    for s in subs[1:]:
        assert s.line()["msg"] == "m"


def test_one_reaches_exactly_one_subscriber_uniformly(clients, topic):
    subs = [clients() for _ in range(3)]
    for s in subs:
        subscribe(s, topic)
    p = clients()
    n = 300
    p.send("".join(json.dumps({"command": "send", "topic": topic, "msg": str(i),
                               "delivery": "one"}) + "\n" for i in range(n)))
    assert p.lines(n) == [OK] * n
    got = []
    for s in subs:
        mine = []
        s.cmd(command="unsubscribe", topic=topic)
        while True:
            line = s.line()
            if line == OK:
                break
            mine.append(int(line["msg"]))
        assert len(mine) >= 40, f"a subscriber got only {len(mine)} of {n}"
        assert mine == sorted(mine)
        got += mine
    assert sorted(got) == list(range(n))   # each exactly once


def test_one_with_subscribers_is_not_cached(clients, topic):
    p, s = clients(), clients()
    subscribe(s, topic)
    send(p, topic, "m", delivery="one")
    assert s.line()["msg"] == "m"
    late = clients()
    subscribe(late, topic)
    late.sync()


def test_one_without_subscribers_is_cached_for_the_next_taker(clients, topic):
    p = clients()
    send(p, topic, "kept", delivery="one")
    first, second = clients(), clients()
    subscribe(first, topic)
    assert first.line()["msg"] == "kept"
    subscribe(second, topic)
    second.sync()
    subscribe(first, topic)   # gone for the first one too
    first.sync()


def test_cache_false_is_never_cached(clients, topic):
    p = clients()
    send(p, topic, "a", cache=False)
    send(p, topic, "o", delivery="one", cache=False)
    send(p, topic, "kept")
    s = clients()
    subscribe(s, topic)
    assert s.line()["msg"] == "kept"
    s.sync()


def test_all_is_cached_after_delivery(clients, topic):
    p, s = clients(), clients()
    subscribe(s, topic)
    send(p, topic, "m")
    assert s.line()["msg"] == "m"
    late = clients()
    subscribe(late, topic)
    assert late.line()["msg"] == "m"
