"""--metrics: the Prometheus endpoint served from the broker's own loop.

Scrapes go through http.client, a real HTTP client; the exposition is read by
the strict parser below, so a malformed line fails the test that scraped it.
Each test that counts starts its own server, so every figure is exact."""

import http.client
import json
import os
import re
import resource
import select
import shutil
import socket
import subprocess
import time

import pytest

from mqd_harness import (BAD_JSON, BAD_UTF8, MALFORMED, OK, TIMEOUT, TOO_LONG, TOO_MANY, Client,
                         free_port, http_request, ipv6_loopback, metrics_port, run_mqd,
                         subscribe, vm_size)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CUT_AFTER = 5        # seconds a metrics client has to finish (HTTPD_TIMEOUT_MS)
HEAD_CUT_AFTER = 2   # seconds it has to send its request head (HTTPD_HEAD_TIMEOUT_MS)
PER_ADDRESS = 4      # metrics connections from one address (HTTPD_MAX_PER_ADDRESS)
MAX_CONNS = 16       # metrics connections served at once (HTTPD_MAX_CONNS)
HEAD_LIMIT = 8192    # bytes of a request head (HTTP_MAX_HEAD)

# family -> (type, label name, label values); None: unlabelled
FAMILIES = {
    "mqd_connections": ("gauge", None, None),
    "mqd_connections_accepted_total": ("counter", None, None),
    "mqd_connections_rejected_total":
        ("counter", "reason", {"max_clients", "fd_exhausted", "out_of_memory", "per_address"}),
    "mqd_topics": ("gauge", None, None),
    "mqd_retired_topics": ("gauge", None, None),
    "mqd_subscriptions": ("gauge", None, None),
    "mqd_messages_received_total": ("counter", None, None),
    "mqd_messages_delivered_total": ("counter", None, None),
    "mqd_received_bytes_total": ("counter", None, None),
    "mqd_sent_bytes_total": ("counter", None, None),
    "mqd_cached_messages": ("gauge", None, None),
    "mqd_cached_bytes": ("gauge", None, None),
    "mqd_slow_consumer_disconnects_total": ("counter", None, None),
    "mqd_idle_disconnects_total": ("counter", None, None),
    "mqd_timed_out_disconnects_total": ("counter", None, None),
    "mqd_loop_passes_over_budget_total": ("counter", None, None),
    "mqd_memory_used_bytes": ("gauge", None, None),
    "mqd_memory_limit_bytes": ("gauge", None, None),
    "mqd_cache_evictions_total": ("counter", None, None),
    "mqd_cache_evicted_one_total": ("counter", None, None),
    "mqd_clients_evicted_total": ("counter", None, None),
    "mqd_one_returned_total": ("counter", "to", {"subscriber", "cache", "lost"}),
    "mqd_protocol_errors_total":
        ("counter", "reason", {"utf8", "json", "malformed", "line_too_long", "out_of_memory",
                               "topic_too_long", "too_many_topics", "too_many_subscriptions",
                               "not_persisted", "auth_required", "auth_failed",
                               "permission_denied", "auth_not_enabled"}),
    "mqd_auth_checks_total": ("counter", "result", {"accepted", "rejected", "limited"}),
    "mqd_auth_checks_waiting": ("gauge", None, None),
    "mqd_loop_pass_seconds": ("histogram", "le", None),
    "mqd_persist_records_total": ("counter", None, None),
    "mqd_persist_written_bytes_total": ("counter", None, None),
    "mqd_persist_errors_total": ("counter", None, None),
    "mqd_persist_log_bytes": ("gauge", None, None),
    "mqd_persist_snapshot_bytes": ("gauge", None, None),
    "mqd_persist_compactions_total": ("counter", "result", {"done", "failed"}),
    "mqd_persist_last_compaction_timestamp_seconds": ("gauge", None, None),
    "mqd_persist_fsync_seconds": ("histogram", "le", None),
    "mqd_persist_last_compaction_duration_seconds": ("gauge", None, None),
    "mqd_start_time_seconds": ("gauge", None, None),
    "mqd_build_info": ("gauge", "version", None),
}


# --- a strict reader of the text exposition format, version 0.0.4 ---

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def parse_labels(text):
    """'a="x",b="y\\"z"' -> {"a": "x", "b": 'y"z'}; anything else fails."""
    labels, pos = {}, 0
    while pos < len(text):
        m = re.compile(rf'({LABEL_NAME})="').match(text, pos)
        assert m, f"bad label at {text[pos:]!r}"
        name, pos, value = m.group(1), m.end(), []
        while True:
            assert pos < len(text), f"unterminated label value in {text!r}"
            ch = text[pos]
            if ch == "\\":
                escaped = text[pos + 1:pos + 2]
                assert escaped in ("\\", '"', "n"), f"bad escape in {text!r}"
                value.append("\n" if escaped == "n" else escaped)
                pos += 2
            elif ch == '"':
                pos += 1
                break
            else:
                assert ch != "\n"
                value.append(ch)
                pos += 1
        assert name not in labels, f"label {name} twice in {text!r}"
        labels[name] = "".join(value)
        if pos < len(text):
            assert text[pos] == ",", f"no comma between labels in {text!r}"
            pos += 1
            assert pos < len(text), f"trailing comma in {text!r}"
    return labels


def parse_value(text):
    assert re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?|[-+]?Inf|NaN", text), text
    return float(text)


def parse_exposition(text):
    """Reads the whole text; returns ({family: {"type", "help"}}, {(name, labels): value}).

    Fails on anything the format does not allow: lines out of shape, a HELP
    or TYPE twice or after its samples, a family's samples not together, a
    series twice, a sample of no declared family."""
    assert text.endswith("\n"), "the last line is not ended"
    families, series = {}, {}
    current, finished = None, set()

    def enter(family):
        nonlocal current
        if family != current:
            assert family not in finished, f"{family} is split in two"
            if current:
                finished.add(current)
            current = family

    for line in text[:-1].split("\n"):
        if line.startswith("#"):
            m = re.fullmatch(rf"# (HELP|TYPE) ({NAME}) (.+)", line)
            assert m, f"bad comment line {line!r}"
            kind, name, rest = m.group(1).lower(), m.group(2), m.group(3)
            enter(name)
            family = families.setdefault(name, {})
            assert kind not in family, f"{kind} twice for {name}"
            assert not any(key[0] == name for key in series), f"{kind} after samples of {name}"
            if kind == "type":
                assert rest in TYPES, f"bad type {rest!r}"
            else:
                assert re.fullmatch(r"([^\\]|\\[\\n])*", rest), f"bad escape in {line!r}"
            family[kind] = rest
            continue
        m = re.fullmatch(rf"({NAME})(?:\{{(.*)\}})? (\S+)(?: (-?\d+))?", line)
        assert m, f"bad sample line {line!r}"
        name, labels, value = m.group(1), parse_labels(m.group(2) or ""), m.group(3)
        family = name
        for suffix in ("_bucket", "_sum", "_count"):   # a histogram's samples
            base = name.removesuffix(suffix)
            if base != name and families.get(base, {}).get("type") == "histogram":
                family = base
        assert family in families, f"sample of undeclared {name}"
        enter(family)
        key = (name, tuple(sorted(labels.items())))
        assert key not in series, f"{key} twice"
        series[key] = parse_value(value)
    return families, series


def test_the_parser_is_strict():
    good = '# HELP a_total x\n# TYPE a_total counter\na_total{r="q\\"\\n"} 1\n'
    families, series = parse_exposition(good)
    assert families == {"a_total": {"help": "x", "type": "counter"}}
    assert series == {("a_total", (("r", 'q"\n'),)): 1.0}
    bad = [
        good[:-1],                                              # no final newline
        "a 1\n",                                                # undeclared
        "# TYPE a gauge\n# TYPE a gauge\na 1\n",                # TYPE twice
        "# TYPE a gauge\na 1\n# HELP a x\n",                    # HELP after samples
        "# TYPE a gauge\na 1\na 2\n",                           # series twice
        "# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na{x=\"1\"} 1\n",  # split family
        "# TYPE a gauge\na{x=\"1\",} 1\n",                      # trailing comma
        "# TYPE a gauge\na{x=\"\\t\"} 1\n",                     # bad escape
        "# TYPE a gauge\na{x=1} 1\n",                           # unquoted
        "# TYPE a gauge\na one\n",                              # not a number
        "# TYPE a gauge\na  1\n",                               # two spaces
        "# TYPE a wrong\na 1\n",                                # unknown type
        "# TYPE 1a gauge\n",                                    # bad name
    ]
    for text in bad:
        with pytest.raises(AssertionError):
            parse_exposition(text)


# --- helpers ---

@pytest.fixture
def mserver(start):
    """Starts a server with --metrics on a port it picks itself (0)."""
    def _start(*args, **kwargs):
        server = start("--metrics", "0", *args, **kwargs)
        server.mport = metrics_port(server)
        return server
    return _start


def scrape(server):
    """The server's series, read strictly, after checking the response."""
    status, headers, body = http_request(server.mport)
    assert status == 200
    assert headers["Content-Type"] == CONTENT_TYPE
    assert int(headers["Content-Length"]) == len(body)
    assert headers["Connection"] == "close"
    return parse_exposition(body.decode("utf-8"))[1]


def value(series, name, **labels):
    return series[(name, tuple(sorted(labels.items())))]


def wait_for(server, name, want, **labels):
    """Scrapes until the series shows `want`, which it must within TIMEOUT."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        got = value(scrape(server), name, **labels)
        if got == want:
            return
        assert time.monotonic() < deadline, f"{name}{labels} is {got}, never {want}"
        time.sleep(0.01)


def raw(port, data, source="127.0.0.1"):
    """A plain socket that sent `data`, connected from `source` (a loopback
    address)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT, source_address=(source, 0))
    s.sendall(data)
    return s


def read_all(sock):
    """What the server sends until it closes the connection."""
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return out
        if not chunk:
            return out
        out += chunk


def listening_ports(pid):
    """The TCP ports the process listens on, from /proc."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:   # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


# --- the endpoint and the format ---

def check_loop_passes(series):
    """The loop's passes: the server has run some by the time it answers;
    buckets cumulative, +Inf the count; returns the count."""
    buckets = sorted((float(dict(labels)["le"]), v) for (name, labels), v in series.items()
                     if name == "mqd_loop_pass_seconds_bucket")
    assert [le for le, _ in buckets] == [0.0001, 0.001, 0.01, 0.1, 1.0, float("inf")]
    counts = [v for _, v in buckets]
    assert counts == sorted(counts)
    count = series[("mqd_loop_pass_seconds_count", ())]
    assert counts[-1] == count > 0
    assert series[("mqd_loop_pass_seconds_sum", ())] > 0
    return count


def test_loop_passes_are_counted(mserver):
    server = mserver()
    _, _, body = http_request(server.mport)
    before = check_loop_passes(parse_exposition(body.decode())[1])
    c = server.client()
    for _ in range(20):
        c.sync()
    _, _, body = http_request(server.mport)
    assert check_loop_passes(parse_exposition(body.decode())[1]) >= before + 20
    c.close()


def test_every_metric_has_help_type_and_its_labels(mserver):
    before = int(time.time())
    server = mserver()
    after = int(time.time())
    status, headers, body = http_request(server.mport)
    assert status == 200 and headers["Content-Type"] == CONTENT_TYPE
    families, series = parse_exposition(body.decode("utf-8"))
    assert set(families) == set(FAMILIES)
    for name, (kind, label, label_values) in FAMILIES.items():
        assert families[name]["type"] == kind
        assert families[name]["help"]
        assert name.endswith("_total") == (kind == "counter")
        samples = [labels for (n, labels) in series if n == name]
        if label is None:
            assert samples == [()]
        elif label_values is not None:
            assert {dict(l)[label] for l in samples} == label_values
            assert all(len(l) == 1 for l in samples)
    # mqd's own structures are counted from the start; the default budget
    # (test_memory.py checks its figure) is in force
    assert series[("mqd_memory_used_bytes", ())] > 0
    assert series[("mqd_memory_limit_bytes", ())] > series[("mqd_memory_used_bytes", ())]
    check_loop_passes(series)
    for key, v in series.items():
        if key[0] not in ("mqd_start_time_seconds", "mqd_build_info", "mqd_memory_used_bytes",
                          "mqd_memory_limit_bytes") and not key[0].startswith("mqd_loop_pass"):
            assert v == 0, key   # nothing has happened yet
    version = run_mqd("--version")[1].split()[1]
    assert value(series, "mqd_build_info", version=version) == 1
    assert before <= value(series, "mqd_start_time_seconds") <= after


def test_promtool_accepts_the_output(mserver):
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool is not installed (Debian package prometheus); "
                    "the strict parser above still checks the format")
    server = mserver()
    body = http_request(server.mport)[2]
    p = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                       timeout=TIMEOUT)
    assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()


def test_head_has_the_headers_and_no_body(mserver):
    server = mserver()
    status, headers, body = http_request(server.mport, "HEAD")
    assert status == 200 and body == b""
    assert headers["Content-Type"] == CONTENT_TYPE
    full = http_request(server.mport)[2]
    assert int(headers["Content-Length"]) == len(full)


def test_a_query_string_and_http_1_0_are_fine(mserver):
    server = mserver()
    assert http_request(server.mport, path="/metrics?name[]=mqd_topics")[0] == 200
    s = raw(server.mport, b"GET /metrics HTTP/1.0\r\n\r\n")
    reply = read_all(s)
    s.close()
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    head, body = reply.split(b"\r\n\r\n", 1)
    assert b"\r\nContent-Length: %d\r\n" % len(body) in head
    parse_exposition(body.decode())


@pytest.mark.parametrize("path", ["/", "/metric", "/metrics/", "/Metrics", "/other"])
def test_other_paths_are_404(mserver, path):
    server = mserver()
    status, headers, body = http_request(server.mport, path=path)
    assert status == 404 and body == b"Not Found\n"
    assert headers["Connection"] == "close"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "get"])
def test_other_methods_are_405_with_allow(mserver, method):
    server = mserver()
    status, headers, _ = http_request(server.mport, method)
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"


# request heads refused, and the status that says so (also fuzzing seeds)
BAD_HEADS = [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /metrics\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\n\r\n", 400),                   # no Host
    (b"GET  /metrics HTTP/1.0\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.0\r\nBad Header: x\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.0\r\nA: b\r\n folded\r\n\r\n", 400),
    (b"GET /metrics HTTP/2.0\r\n\r\n", 505),
]


@pytest.mark.parametrize("head, status", BAD_HEADS)
def test_malformed_requests_are_answered_and_closed(mserver, head, status):
    server = mserver()
    s = raw(server.mport, head)
    reply = read_all(s)   # ends: the server closed
    s.close()
    assert reply.startswith(b"HTTP/1.1 %d " % status)
    assert b"\r\nConnection: close\r\n" in reply


def test_an_oversized_head_is_refused_and_closed(mserver):
    server = mserver()
    s = raw(server.mport, b"GET /metrics HTTP/1.1\r\nHost: h\r\n" +
            b"X-Pad: " + b"p" * (2 * HEAD_LIMIT) + b"\r\n")
    reply = read_all(s)
    s.close()
    assert reply.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert http_request(server.mport)[0] == 200   # and the endpoint goes on


def test_a_head_just_under_the_limit_is_served(mserver):
    server = mserver()
    start = b"GET /metrics HTTP/1.1\r\nHost: h\r\nX-Pad: "
    head = start + b"p" * (HEAD_LIMIT - len(start) - 4) + b"\r\n\r\n"
    assert len(head) == HEAD_LIMIT
    s = raw(server.mport, head)
    reply = read_all(s)
    s.close()
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_request_that_never_ends_is_cut_and_blocks_nobody(mserver):
    server = mserver()
    slow = raw(server.mport, b"GET /metrics HTTP/1.1\r\nHost: h\r\n")   # no empty line
    # meanwhile, pub/sub traffic and other scrapes go on
    a, b = server.client(), server.client()
    subscribe(a, "t")
    for i in range(50):
        b.cmd(command="send", topic="t", msg=str(i), delivery="all")
        assert b.line() == OK
        assert a.line()["msg"] == str(i)
    assert value(scrape(server), "mqd_messages_delivered_total") == 50
    # it is cut, without an answer, after the timeout
    slow.settimeout(CUT_AFTER + TIMEOUT)
    assert read_all(slow) == b""
    slow.close()
    a.close()
    b.close()


def test_a_client_that_keeps_the_connection_open_is_cut(mserver):
    server = mserver("--log-level", "debug")
    s = raw(server.mport, b"GET /metrics HTTP/1.0\r\n\r\n")
    where = "127.0.0.1:%d" % s.getsockname()[1]
    # answered, and the sending side shut; the endpoint then waits for the
    # client to close, and this one never does: it is cut at the deadline
    assert read_all(s).startswith(b"HTTP/1.1 200 OK\r\n")
    server.wait_for_log(f"DEBUG metrics client {where} closed: timed out")
    s.close()


def test_at_most_16_connections_and_the_rest_wait(mserver):
    server = mserver()
    idle = [raw(server.mport, b"GET /metr", source=f"127.0.0.{i + 2}") for i in range(MAX_CONNS)]
    late = raw(server.mport, b"GET /metrics HTTP/1.0\r\n\r\n")
    # while every slot is taken, the late one is not answered...
    assert select.select([late], [], [], 0.3)[0] == []
    # ...and the broker is served all the same
    c = server.client()
    subscribe(c, "t")
    # one slot frees: the late one gets its answer
    idle.pop().close()
    assert read_all(late).startswith(b"HTTP/1.1 200 OK\r\n")
    late.close()
    for s in idle:
        s.close()
    c.close()


def test_at_most_four_connections_from_one_address(mserver):
    server = mserver()
    held = [raw(server.mport, b"GET /metr") for _ in range(PER_ADDRESS)]
    one_more = raw(server.mport, b"GET /metrics HTTP/1.0\r\n\r\n")
    assert read_all(one_more) == b""   # closed at once, unanswered
    server.wait_for_log("connections from its address already")
    # another address is served meanwhile
    other = raw(server.mport, b"GET /metrics HTTP/1.0\r\n\r\n", source="127.0.0.2")
    assert read_all(other).startswith(b"HTTP/1.1 200 OK\r\n")
    held.pop().close()   # a place for this address again
    wait = time.monotonic() + TIMEOUT
    while True:
        s = raw(server.mport, b"GET /metrics HTTP/1.0\r\n\r\n")
        if read_all(s).startswith(b"HTTP/1.1 200 OK\r\n"):
            break
        assert time.monotonic() < wait, "the address never got its place back"
    for s in held:
        s.close()


def test_slow_clients_from_one_address_keep_nobody_else_out(mserver):
    """slowloris: a hundred connections that send a head byte by byte hold at
    most four places, for at most the head deadline; every scrape from
    elsewhere is answered meanwhile"""
    server = mserver()
    slow = []
    for _ in range(100):
        try:
            slow.append(raw(server.mport, b"G"))
        except OSError:
            pass
    for i in range(5):
        s = raw(server.mport, b"GET /metrics HTTP/1.0\r\n\r\n", source="127.0.0.3")
        assert read_all(s).startswith(b"HTTP/1.1 200 OK\r\n")
        s.close()
    for s in slow:
        s.close()


def test_an_unfinished_head_is_cut_at_the_head_deadline(mserver):
    server = mserver()
    s = raw(server.mport, b"GET /metrics HTTP/1.1\r\nHost: h\r\n")
    started = time.monotonic()
    s.settimeout(CUT_AFTER + TIMEOUT)
    assert read_all(s) == b""
    # the head's deadline, not the whole response's
    assert time.monotonic() - started < (HEAD_CUT_AFTER + CUT_AFTER) / 2 + 1
    s.close()


def test_a_refused_client_that_keeps_sending_is_not_read_for_long(mserver):
    server = mserver()
    s = raw(server.mport, b"GET /metrics HTTP/1.1\r\nHost: h\r\n" + b"X-Pad: " +
            b"p" * (2 * HEAD_LIMIT))
    # it was answered 431 and shut; it goes on sending: the server stops
    # reading after a head's worth, and closes
    sent = 0
    try:
        for _ in range(4000):
            s.sendall(b"p" * 4096)
            sent += 4096
    except OSError:
        pass
    assert sent < 4000 * 4096, "the server read on and on"
    s.close()
    assert http_request(server.mport)[0] == 200


def test_clients_that_leave_half_way_cost_nothing(mserver):
    server = mserver()
    for part in (b"", b"GE", b"GET /metrics HTTP/1.1\r\nHo"):
        s = raw(server.mport, part)
        s.close()
    s = raw(server.mport, b"GET /metrics HTTP/1.0\r\n\r\n")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()   # a reset before the answer is read
    # (from another address: the four above may not all be gone yet)
    s = raw(server.mport, b"GET /metrics HTTP/1.0\r\n\r\n", source="127.0.0.2")
    assert read_all(s).startswith(b"HTTP/1.1 200 OK\r\n")
    s.close()


# --- the figures ---

def test_connections_topics_messages_bytes_and_cache(mserver):
    # the figures are made all different, so one shown under another's name fails
    server = mserver()
    a, b, p, q = (server.client() for _ in range(4))
    q.close()
    wait_for(server, "mqd_connections", 3)
    sent = received = 0

    def cmd(client, **fields):
        nonlocal sent
        line = json.dumps(fields) + "\n"
        sent += len(line)
        client.send(line)
        assert take(client) == b'{"success": true}\r\n'

    def take(client):
        nonlocal received
        line = client.raw_line()
        received += len(line)
        return line

    for topic in ("t1", "t2", "t4", "t5", "t6"):
        cmd(a, command="subscribe", topic=topic)
    for topic in ("t1", "t4"):
        cmd(b, command="subscribe", topic=topic)
    cached = []
    for i in range(2):
        cmd(p, command="send", topic="t1", msg=str(i), delivery="all")
        cached.append(take(a))
        assert take(b) == cached[-1]
    cmd(p, command="send", topic="t2", msg="to a", delivery="one")
    take(a)   # its one subscriber takes it: not cached
    for i in range(6):
        cmd(p, command="send", topic="t3", msg="x" * i, delivery="all")
    s = scrape(server)
    assert {name: value(s, name) for name in (
        "mqd_connections", "mqd_connections_accepted_total", "mqd_messages_delivered_total",
        "mqd_topics", "mqd_subscriptions", "mqd_cached_messages",
        "mqd_messages_received_total")} == {
        "mqd_connections": 3, "mqd_connections_accepted_total": 4,
        "mqd_messages_delivered_total": 5, "mqd_topics": 6, "mqd_subscriptions": 7,
        "mqd_cached_messages": 8, "mqd_messages_received_total": 9}
    assert value(s, "mqd_received_bytes_total") == sent
    assert value(s, "mqd_sent_bytes_total") == received

    # a late subscriber replays t3's cache: six more deliveries, and the
    # cache keeps them
    cmd(b, command="subscribe", topic="t3")
    cached += [take(b) for _ in range(6)]
    s = scrape(server)
    assert value(s, "mqd_cached_messages") == 8
    assert value(s, "mqd_cached_bytes") == sum(map(len, cached))
    assert value(s, "mqd_messages_delivered_total") == 11
    assert value(s, "mqd_messages_received_total") == 9
    assert value(s, "mqd_subscriptions") == 8
    assert value(s, "mqd_sent_bytes_total") == received

    # b leaves: its connection and subscriptions go, the counters stay
    b.close()
    wait_for(server, "mqd_connections", 2)
    s = scrape(server)
    assert value(s, "mqd_subscriptions") == 5
    assert value(s, "mqd_connections_accepted_total") == 4
    assert value(s, "mqd_messages_delivered_total") == 11
    # a topic with no subscriber left and nothing cached goes; one sent to
    # keeps only its index
    cmd(a, command="unsubscribe", topic="t5")
    cmd(a, command="unsubscribe", topic="t2")
    s = scrape(server)
    assert value(s, "mqd_topics") == 4
    assert value(s, "mqd_retired_topics") == 1
    a.close()
    p.close()
    wait_for(server, "mqd_connections", 0)


def test_protocol_errors_by_reason(mserver):
    server = mserver("--max-line", "1k")
    c = server.client()
    for data, reply in ((b"\xff\n", BAD_UTF8),
                        (b"{\n", BAD_JSON), (b"[1,]\n", BAD_JSON),
                        (b'{"command":"nope"}\n', MALFORMED), (b"[]\n", MALFORMED),
                        (b"{}\n", MALFORMED),
                        *[(b"x" * 2000 + b"\n", TOO_LONG)] * 4):
        c.send(data)
        assert c.line() == reply
    s = scrape(server)
    assert value(s, "mqd_protocol_errors_total", reason="utf8") == 1
    assert value(s, "mqd_protocol_errors_total", reason="json") == 2
    assert value(s, "mqd_protocol_errors_total", reason="malformed") == 3
    assert value(s, "mqd_protocol_errors_total", reason="line_too_long") == 4
    assert value(s, "mqd_protocol_errors_total", reason="out_of_memory") == 0
    c.close()


def test_out_of_memory_replies_are_counted(mserver):
    server = mserver("--max-line", "64m", "--max-output", "65m")
    c = server.client()
    limit = vm_size(server.proc.pid) + 4 * 1024 * 1024
    resource.prlimit(server.proc.pid, resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
    c.send(b'{"command":"send","topic":"t","msg":"' + b"x" * (24 << 20) +
           b'","delivery":"all"}\n')
    assert c.line() == {"success": False, "reason": "Out of memory"}
    resource.prlimit(server.proc.pid, resource.RLIMIT_AS,
                     (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert value(scrape(server), "mqd_protocol_errors_total", reason="out_of_memory") == 1
    c.close()


def test_slow_consumers_are_counted(mserver):
    server = mserver("--max-output", "64k", "--max-line", "32k")
    slow, p = server.client(), server.client()
    subscribe(slow, "t")
    chunk = "x" * 10000
    for i in range(2000):   # at most 20 MB, far past what the socket buffers hold
        p.cmd(command="send", topic="t", msg=chunk, delivery="all", cache=False)
        assert p.line() == OK
        if i % 50 == 49 and "slow consumer" in server.stderr():
            break
    wait_for(server, "mqd_slow_consumer_disconnects_total", 1)
    wait_for(server, "mqd_connections", 1)
    slow.close()
    p.close()


def wait_metrics_idle(server):
    """Waits until the server has closed every metrics connection (needs
    --log-level debug): a scrape's connection outlives the response a little."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        log = server.stderr()
        if len(re.findall(r"metrics client \S+ connected", log)) == \
                len(re.findall(r"metrics client \S+ closed", log)):
            return
        assert time.monotonic() < deadline, "a metrics connection stays open"
        time.sleep(0.01)


def test_rejections_by_max_clients_and_by_descriptors(mserver):
    server = mserver("--max-clients", "1", "--log-level", "debug")
    kept = server.client()
    subscribe(kept, "t")
    refused = server.client()
    assert refused.line() == TOO_MANY
    refused.close()
    s = scrape(server)
    assert value(s, "mqd_connections_rejected_total", reason="max_clients") == 1
    assert value(s, "mqd_connections_accepted_total") == 1
    assert value(s, "mqd_connections_rejected_total", reason="fd_exhausted") == 0
    kept.close()
    wait_for(server, "mqd_connections", 0)

    # no descriptor left for a new client (nor one about to be freed)
    wait_metrics_idle(server)
    open_fds = len(os.listdir(f"/proc/{server.proc.pid}/fd"))
    hard = resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE)[1]
    resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE, (open_fds, hard))
    refused = server.client()
    assert refused.line() == TOO_MANY
    refused.close()
    resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE, (hard, hard))
    # the endpoint too was out of descriptors for a moment: it retries
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            s = scrape(server)
            break
        except (ConnectionError, socket.timeout, http.client.HTTPException):
            assert time.monotonic() < deadline, "the endpoint never came back"
    assert value(s, "mqd_connections_rejected_total", reason="fd_exhausted") == 1
    assert value(s, "mqd_connections_rejected_total", reason="max_clients") == 1
    assert value(s, "mqd_connections_rejected_total", reason="out_of_memory") == 0


# --- the command line ---

def test_off_by_default(start):
    server = start()
    assert "metrics" not in server.stderr()
    assert listening_ports(server.proc.pid) == {server.port}


def test_the_address_is_logged_and_listened_on(mserver):
    server = mserver()
    line = [l for l in server.stderr().splitlines() if "metrics" in l][0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO metrics on "
                        rf"http://127\.0\.0\.1:{server.mport}/metrics", line)
    assert listening_ports(server.proc.pid) == {server.port, server.mport}


@pytest.mark.parametrize("form", ["{p}", "127.0.0.1:{p}", "--metrics={p}"])
def test_a_port_alone_or_with_an_ipv4_address(start, form):
    for _ in range(5):   # a free port may be taken meanwhile: try another
        port = free_port()
        args = [form.format(p=port)] if form.startswith("--") else \
            ["--metrics", form.format(p=port)]
        try:
            server = start(*args)
        except RuntimeError as e:
            if "in use" in str(e):
                continue
            raise
        assert f"INFO metrics on http://127.0.0.1:{port}/metrics" in server.stderr()
        assert http_request(port)[0] == 200
        return
    pytest.fail("no free port found")


def test_an_ipv6_address_in_brackets(start):
    port = free_port()
    if not ipv6_loopback():
        status, _, err = run_mqd("--port", str(free_port()), "--metrics", f"[::1]:{port}",
                                 timeout=5)
        assert status == 1 and f"cannot serve metrics on [::1]:{port}" in err
        return
    server = start("--metrics", "[::1]:0")
    port = int(re.search(r"metrics on http://\[::1\]:(\d+)/metrics", server.stderr()).group(1))
    status, _, body = http_request(port, host="::1")
    assert status == 200
    parse_exposition(body.decode())


@pytest.mark.parametrize("bad", ["abc", "localhost:9100", "::1:9100", "[::1]", "127.0.0.1",
                                 "127.0.0.1:", ":9100", "70000", "-1", "1.2.3.4:99999", ""])
def test_bad_values_exit_2_with_a_one_line_error(bad):
    status, out, err = run_mqd("--metrics", bad)
    assert status == 2 and out == ""
    first, rest = err.split("\n", 1)
    assert first == f"mqd: invalid value '{bad}' for --metrics"
    assert rest.startswith("Usage: mqd")


def test_metrics_port_in_use_exits_1_and_says_so():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, _, err = run_mqd("--port", str(free_port()), "--metrics", str(port))
    assert status == 1
    assert err == f"mqd: cannot serve metrics on 127.0.0.1:{port}: Address already in use\n"


@pytest.mark.parametrize("policy", ["always", "everysec"])
def test_persistence_is_measured(mserver, tmp_path, policy):
    server = mserver("--data-dir", str(tmp_path), "--fsync", policy, "--compact-min", "8K")
    before = scrape(server)
    assert value(before, "mqd_persist_records_total") == 0
    assert value(before, "mqd_persist_log_bytes") == 12   # a new log's head
    c = Client(server.port)
    for i in range(200):
        assert c.request(command="send", topic=f"t{i % 4}", msg="m" * 80, delivery="all") == OK
    # every compaction begun has finished (the last is put in place at the
    # once-a-second tick when no commit comes after it)
    server.wait_until(lambda: 0 < server.stderr().count("compacted into snapshot") ==
                      server.stderr().count("compacting into snapshot"), "the compactions")
    done = server.stderr().count("compacted into snapshot")
    wait_for(server, "mqd_persist_compactions_total", done, result="done")
    series = scrape(server)
    assert value(series, "mqd_persist_records_total") == 200   # each send, one record
    written = value(series, "mqd_persist_written_bytes_total")
    assert 200 * 100 < written < 200 * 200
    assert value(series, "mqd_persist_errors_total") == 0
    assert value(series, "mqd_persist_compactions_total", result="failed") == 0
    assert abs(value(series, "mqd_persist_last_compaction_timestamp_seconds") - time.time()) < 60
    assert 0 < value(series, "mqd_persist_last_compaction_duration_seconds") < TIMEOUT
    snapshots = [n for n in os.listdir(tmp_path) if n.startswith("snapshot.")]
    assert len(snapshots) == 1
    assert value(series, "mqd_persist_snapshot_bytes") == os.path.getsize(tmp_path / snapshots[0])
    # always: one sync per pass with records, each send its own pass here;
    # everysec: the helper's, within a second of something written
    if policy == "always":
        assert value(series, "mqd_persist_fsync_seconds_count") >= 200
    else:
        synced = value(series, "mqd_persist_fsync_seconds_count")
        assert c.request(command="send", topic="t", msg="one more", delivery="all") == OK
        wait_for(server, "mqd_persist_fsync_seconds_count", synced + 1)
    assert value(series, "mqd_persist_fsync_seconds_sum") > 0
