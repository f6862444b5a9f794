"""PROTOCOL.md, "Schemas"."""
import pytest

from mqd_harness import MALFORMED, OK, send, subscribe

MALFORMED_LINES = [
    '[]', '"subscribe"', '42', 'null', 'true', '{}',
    '{"command":"publish","topic":"t"}',
    '{"command":"Subscribe","topic":"t"}',
    '{"command":5,"topic":"t"}',
    '{"topic":"t"}',
    # missing keys
    '{"command":"subscribe"}',
    '{"command":"unsubscribe"}',
    '{"command":"send","topic":"t","msg":"m"}',
    '{"command":"send","topic":"t","delivery":"all"}',
    '{"command":"send","msg":"m","delivery":"all"}',
    # keys outside the command's list
    '{"command":"subscribe","topic":"t","extra":1}',
    '{"command":"subscribe","topic":"t","msg":"m"}',
    '{"command":"unsubscribe","topic":"t","last_seen":1}',
    '{"command":"unsubscribe","topic":"t","cache":true}',
    '{"command":"send","topic":"t","msg":"m","delivery":"all","last_seen":1}',
    '{"command":"send","topic":"t","msg":"m","delivery":"all","index":1}',
    # wrong types
    '{"command":"subscribe","topic":1}',
    '{"command":"subscribe","topic":null}',
    '{"command":"subscribe","topic":["t"]}',
    '{"command":"subscribe","topic":{"a":"t"}}',
    '{"command":"subscribe","topic":"t","last_seen":true}',
    '{"command":"subscribe","topic":"t","last_seen":1.5}',
    '{"command":"subscribe","topic":"t","last_seen":1.0}',
    '{"command":"subscribe","topic":"t","last_seen":1e2}',
    '{"command":"subscribe","topic":"t","last_seen":1E2}',
    '{"command":"subscribe","topic":"t","last_seen":"123"}',
    '{"command":"subscribe","topic":"t","last_seen":null}',
    '{"command":"subscribe","topic":"t","cache":1}',
    '{"command":"subscribe","topic":"t","cache":"true"}',
    '{"command":"subscribe","topic":"t","cache":null}',
    '{"command":"send","topic":"t","msg":1,"delivery":"all"}',
    '{"command":"send","topic":"t","msg":null,"delivery":"all"}',
    '{"command":"send","topic":"t","msg":"m","delivery":"some"}',
    '{"command":"send","topic":"t","msg":"m","delivery":"ALL"}',
    '{"command":"send","topic":"t","msg":"m","delivery":true}',
    '{"command":"send","topic":"t","msg":"m","delivery":"all","cache":0}',
    # duplicate keys, even with equal values or spelled with an escape
    '{"command":"subscribe","topic":"t","topic":"t"}',
    '{"command":"subscribe","command":"subscribe","topic":"t"}',
    '{"command":"subscribe","topic":"t","comm\\u0061nd":"subscribe"}',
    '{"command":"send","topic":"t","msg":"a","msg":"b","delivery":"all"}',
    '{"command":"subscribe","topic":"t","cache":true,"cache":false}',
    # U+0000 in a topic
    '{"command":"subscribe","topic":"a\\u0000b"}',
    '{"command":"send","topic":"\\u0000","msg":"m","delivery":"all"}',
    '{"command":"unsubscribe","topic":"x\\u0000"}',
]


@pytest.mark.parametrize("line", MALFORMED_LINES)
def test_malformed(clients, line):
    c = clients()
    c.send(line + "\n")
    assert c.line() == MALFORMED
    c.sync()


def test_escaped_key_names_are_their_decoded_names(clients, topic):
    c = clients()
    c.send('{"comm\\u0061nd":"subscribe","\\u0074opic":"%s"}\n' % topic)
    assert c.line() == OK


def test_empty_topic_is_a_topic(clients):
    a, b = clients(), clients()
    subscribe(a, "")
    send(b, "", "to the empty topic")
    assert a.line()["msg"] == "to the empty topic"


def test_msg_may_hold_u0000(clients, topic):
    a, b = clients(), clients()
    subscribe(a, topic)
    send(b, topic, "a\x00b")
    assert a.line()["msg"] == "a\x00b"


def test_negative_last_seen_replays_everything(clients, topic):
    a = clients()
    for i in range(3):
        send(a, topic, str(i))
    c = clients()
    c.send('{"command":"subscribe","topic":"%s","last_seen":-5}\n' % topic)
    assert c.line() == OK
    assert [m["index"] for m in c.lines(3)] == [0, 1, 2]
    c.sync()


def test_last_seen_beyond_64_bits_clamps(clients, topic):
    a = clients()
    for i in range(3):
        send(a, topic, str(i))
    above, below = clients(), clients()
    above.send('{"command":"subscribe","topic":"%s","last_seen":99999999999999999999999}\n' % topic)
    assert above.line() == OK
    above.sync()
    below.send('{"command":"subscribe","topic":"%s","last_seen":-99999999999999999999}\n' % topic)
    assert below.line() == OK
    assert [m["index"] for m in below.lines(3)] == [0, 1, 2]


def test_optional_keys_accepted_with_their_types(clients, topic):
    c = clients()
    c.send('{"command":"subscribe","topic":"%s","last_seen":0,"cache":false}\n' % topic)
    assert c.line() == OK
    c.send('{"command":"send","topic":"%s","msg":"","delivery":"one","cache":true}\n' % topic)
    assert c.line()["index"] == 0
    assert c.line() == OK
