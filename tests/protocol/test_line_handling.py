"""PROTOCOL.md, "Line handling, in order": UTF-8, then JSON, then schema."""
import pytest

from mqd_harness import BAD_JSON, BAD_UTF8, MALFORMED, OK

BAD_UTF8_LINES = [
    b"\xff",
    b'{"command":"subscribe","topic":"\xff"}',
    b'{"command":"subscribe","topic":"\xc0\xaf"}',          # overlong '/'
    b'{"command":"subscribe","topic":"\xe0\x80\xaf"}',      # overlong, 3 bytes
    b'{"command":"subscribe","topic":"\xed\xa0\x80"}',      # surrogate U+D800
    b'{"command":"subscribe","topic":"\xf4\x90\x80\x80"}',  # above U+10FFFF
    b'{"command":"subscribe","topic":"\xe2\x82"}',          # truncated
    b'{"command":"subscribe","topic":"\x80"}',              # lone continuation
    b"\xc3",
]

BAD_JSON_LINES = [
    b"NaN", b"Infinity", b"-Infinity",
    b'{"command":"subscribe","topic":NaN}',
    b"{'command':'subscribe','topic':'t'}",
    b'{"command":"subscribe","topic":"t"} // comment',
    b'{"command":"subscribe",/* c */"topic":"t"}',
    b'{"command":"subscribe","topic":"t",}',
    b'["a",]',
    b'{"command":"subscribe","topic":"t"}x',
    b'{"command":"subscribe","topic":"t"}{}',
    b'{"command":"subscribe","topic":"t\tx"}',
    b'{"command":"subscribe","topic":"t\x01x"}',
    b'{"command":"subscribe",\x0b"topic":"t"}',
    b'{"command":"subscribe","topic":"\\ud800"}',
    b'{"command":"subscribe","topic":"\\udc00"}',
    b'{"command":"subscribe","topic":"\\ud800\\u0041"}',
    b'{"command":"subscribe","topic":"\\ud800x"}',
    b'{"command":"subscribe","topic":"\\x41"}',
    b'{"command":"subscribe","topic":"t","last_seen":01}',
    b'{"command":"subscribe","topic":"t","last_seen":1.}',
    b'{"command":"subscribe","topic":"t","last_seen":+1}',
    b'{"command":"subscribe","topic":"t","last_seen":.5}',
    b'{"command":"subscribe","topic":"t","cache":True}',
    b'{"command":"subscribe" "topic":"t"}',
    b'{"command":"subscribe","topic":"t"',
    b'{"command"}',
    b"hello",
    b'"unterminated',
    b"[" * 600 + b"]" * 600,
]


@pytest.mark.parametrize("line", BAD_UTF8_LINES)
def test_invalid_utf8_is_refused_first(clients, line):
    c = clients()
    c.send(line + b"\n")
    assert c.line() == BAD_UTF8
    c.sync()


def test_utf8_is_checked_before_json(clients):
    c = clients()
    c.send(b"{not json \xff\n")
    assert c.line() == BAD_UTF8


@pytest.mark.parametrize("line", BAD_JSON_LINES)
def test_invalid_json_is_refused(clients, line):
    c = clients()
    c.send(line + b"\n")
    assert c.line() == BAD_JSON
    c.sync()


def test_json_is_checked_before_the_schema(clients):
    c = clients()
    c.send(b'{"command":"nope","topic":1,}\n')
    assert c.line() == BAD_JSON


def test_valid_json_that_is_no_command_is_malformed(clients):
    c = clients()
    c.send(b'{"command":"nope"}\n')
    assert c.line() == MALFORMED


def test_whitespace_between_tokens_is_allowed(clients, topic):
    c = clients()
    c.send(('{ "command" :\t"subscribe" ,\r"topic" : "%s" }\n' % topic).encode())
    assert c.line() == OK


def test_non_ascii_utf8_is_fine(clients):
    c = clients()
    c.send('{"command":"subscribe","topic":"é中😀"}\n'.encode())
    assert c.line() == OK


def test_every_command_gets_exactly_one_reply_and_errors_keep_the_connection(clients, topic):
    c = clients()
    c.send(b"\xff\n[\n[]\n" + ('{"command":"subscribe","topic":"%s"}\n' % topic).encode())
    assert c.lines(4) == [BAD_UTF8, BAD_JSON, MALFORMED, OK]
    c.sync()
