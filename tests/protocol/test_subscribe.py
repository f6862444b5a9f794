"""PROTOCOL.md, "subscribe"."""
from mqd_harness import OK, send, subscribe


def fill(p, topic, deliveries):
    for i, d in enumerate(deliveries):
        send(p, topic, str(i), delivery=d)


def test_reply_then_replay_in_index_order(clients, topic):
    p, s = clients(), clients()
    fill(p, topic, ["all", "one", "all"])
    s.cmd(command="subscribe", topic=topic)
    assert s.line() == OK
    assert [(m["index"], m["delivery"]) for m in s.lines(3)] == [(0, "all"), (1, "one"), (2, "all")]
    s.sync()


def test_last_seen_replays_only_later_indexes(clients, topic):
    p, s = clients(), clients()
    fill(p, topic, ["all"] * 5)
    s.cmd(command="subscribe", topic=topic, last_seen=2)
    assert s.line() == OK
    assert [m["index"] for m in s.lines(2)] == [3, 4]
    s.sync()


def test_cache_false_subscribes_without_replay(clients, topic):
    p, s = clients(), clients()
    fill(p, topic, ["all", "one"])
    subscribe(s, topic, cache=False)
    s.sync()
    send(p, topic, "live")
    assert s.line()["msg"] == "live"
    other = clients()   # the "one" message is still cached
    subscribe(other, topic, last_seen=0)
    assert other.line()["index"] == 1
    assert other.line()["index"] == 2


def test_handed_over_one_messages_leave_but_others_stay(clients, topic):
    p, s = clients(), clients()
    fill(p, topic, ["one", "all", "one", "all"])
    subscribe(s, topic, last_seen=0)
    assert [m["index"] for m in s.lines(3)] == [1, 2, 3]
    later = clients()
    subscribe(later, topic)
    # index 0 ("one", at or below last_seen) stayed; index 2 was handed over
    assert [m["index"] for m in later.lines(3)] == [0, 1, 3]
    later.sync()


def test_subscribe_to_an_empty_topic(clients, topic):
    s = clients()
    subscribe(s, topic)
    s.sync()
