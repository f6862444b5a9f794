"""PROTOCOL.md, "Example session (netcat)", verbatim."""
from mqd_harness import OK


def test_the_netcat_session(start):
    server = start()
    c = server.client()
    c.send('{"command":"subscribe","topic":"news"}\n')
    assert c.line() == OK
    c.send('{"command":"send","topic":"news","msg":"hello","delivery":"all"}\n')
    assert c.line() == {"command": "send", "topic": "news", "msg": "hello",
                        "delivery": "all", "index": 0}
    assert c.line() == OK
    c.send("quit\n")
    assert c.at_eof()
    c.close()
