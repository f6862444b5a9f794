"""PROTOCOL.md, "Transport and framing"."""
import socket

from mqd_harness import BAD_JSON, OK


def test_lf_and_crlf_both_end_a_line(clients, topic):
    c = clients()
    c.send('{"command":"subscribe","topic":"%s"}\n' % topic)
    assert c.line() == OK
    c.send('{"command":"subscribe","topic":"%s"}\r\n' % topic)
    assert c.line() == OK


def test_only_one_cr_is_dropped_and_the_other_is_json_whitespace(clients, topic):
    c = clients()
    c.send('{"command":"subscribe","topic":"%s"}\r\r\n' % topic)
    assert c.line() == OK


def test_spaces_and_tabs_around_the_line_are_trimmed(clients, topic):
    c = clients()
    c.send(' \t {"command":"subscribe","topic":"%s"} \t \r\n' % topic)
    assert c.line() == OK


def test_other_bytes_around_the_line_are_part_of_it(clients, topic):
    c = clients()
    for junk in (b"\x0b", b"\x0c", "\ufeff".encode()):
        c.send(junk + b'{"command":"subscribe","topic":"t"}\n')
        assert c.line() == BAD_JSON, junk
        c.send(b'{"command":"subscribe","topic":"t"}' + junk + b"\n")
        assert c.line() == BAD_JSON, junk


def test_empty_and_blank_lines_get_no_reply(clients):
    c = clients()
    c.send("\n\r\n   \n\t\r\n \t \n")
    c.sync()


def test_quit_closes_without_a_reply(clients):
    for quit in (b"quit\n", b"  quit\r\n", b"\tquit \n"):
        c = clients()
        c.send(quit)
        assert c.at_eof()


def test_replies_before_quit_are_written_and_lines_after_it_ignored(clients, topic):
    c = clients()
    c.send('{"command":"subscribe","topic":"%s"}\nquit\n{"command":"bogus"}\n' % topic)
    assert c.line() == OK
    assert c.at_eof()


def test_quit_is_exact(clients):
    c = clients()
    c.send("QUIT\n")
    assert c.line() == BAD_JSON
    c.send("quit now\n")
    assert c.line() == BAD_JSON


def test_a_command_split_byte_by_byte(clients, topic):
    c = clients()
    line = ('{"command":"send","topic":"%s","msg":"h\\u00e9","delivery":"all"}\r\n' % topic).encode()
    for i in range(len(line)):
        c.send(line[i:i + 1])
    assert c.line() == OK


def test_many_commands_in_one_segment(clients, topic):
    c = clients()
    batch = "".join('{"command":"send","topic":"%s","msg":"%d","delivery":"all"}\n' % (topic, i)
                    for i in range(200))
    c.send(batch)
    assert c.lines(200) == [OK] * 200


def test_lines_split_across_segments_at_every_offset(clients, topic):
    c = clients()
    two = ('{"command":"subscribe","topic":"%s"}\n' % topic).encode() * 2
    for cut in range(1, len(two)):
        c.send(two[:cut])
        c.send(two[cut:])
        assert c.lines(2) == [OK, OK]


def test_every_server_line_ends_with_crlf(clients, topic):
    c = clients()
    c.send('{"command":"subscribe","topic":"%s"}\n' % topic)
    c.send('{"command":"send","topic":"%s","msg":"x","delivery":"all"}\n' % topic)
    c.send("nonsense\n")
    for _ in range(4):
        assert c.raw_line().endswith(b"\r\n")
