"""PROTOCOL.md, "unsubscribe"."""
from mqd_harness import OK, send, subscribe


def test_unsubscribe_stops_delivery(clients, topic):
    p, s = clients(), clients()
    subscribe(s, topic)
    assert s.request(command="unsubscribe", topic=topic) == OK
    send(p, topic, "m")
    s.sync()


def test_unsubscribe_from_a_topic_never_joined_succeeds(clients, topic):
    s = clients()
    assert s.request(command="unsubscribe", topic=topic + "-never") == OK
    p = clients()
    send(p, topic, "x")
    assert s.request(command="unsubscribe", topic=topic) == OK


def test_unsubscribe_leaves_other_topics_alone(clients, topic):
    p, s = clients(), clients()
    subscribe(s, topic + "1")
    subscribe(s, topic + "2")
    assert s.request(command="unsubscribe", topic=topic + "1") == OK
    send(p, topic + "1", "no")
    send(p, topic + "2", "yes")
    assert s.line()["msg"] == "yes"
    s.sync()


def test_one_goes_to_the_remaining_subscriber(clients, topic):
    a, b, p = clients(), clients(), clients()
    subscribe(a, topic)
    subscribe(b, topic)
    assert a.request(command="unsubscribe", topic=topic) == OK
    for i in range(20):
        send(p, topic, str(i), delivery="one")
    assert [m["msg"] for m in b.lines(20)] == [str(i) for i in range(20)]
    a.sync()
