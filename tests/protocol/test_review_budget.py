"""Hostile tests of --max-memory: each shows a defect in the budget (see the
commit that adds it). They fail against the code they were written for."""

import json
import re

from mqd_harness import OK, Server, http_request, metrics_port, send, subscribe

NO_MEMORY = {"success": False, "reason": "Out of memory"}


def metric(server, name):
    _, _, body = http_request(metrics_port(server))
    m = re.search(rf"^{re.escape(name)} (\d+)$", body.decode(), re.M)
    assert m, name
    return int(m.group(1))


def cmd(**fields):
    return json.dumps(fields) + "\n"


def fill_the_cache(client, budget, body_len=800, topics=100):
    """Sends cached messages to topics nobody listens to, twice the budget's
    worth (the caches, 100 topics of 100 messages, could hold four times
    it): the server then holds about its budget, mostly in cache, which the
    budget may always evict. (Metrics are not asked for meanwhile: see
    test_the_metrics_endpoint_goes_dark_at_the_budget.)"""
    n = 2 * budget // body_len
    for i in range(0, n, 50):
        client.send("".join(cmd(command="send", topic=f"fill{(i + k) % topics}",
                                msg="f" * body_len, delivery="all") for k in range(50)))
        for _ in range(50):
            assert client.line() == OK


def test_a_fan_out_growing_queues_cuts_a_reader_while_the_cache_could_be_evicted(start):
    """budget.h: room is made by evicting cached messages first, then the
    biggest client. But a send's room estimate (broker_room_needed) leaves
    out the receivers' output queues (outq_grow doubles a slot array), and the
    allocator's ceiling leaves only one --max-line of slack: at the budget, a
    subscriber whose queue doubles past that slack is disconnected "out of
    memory for its output" -- a reader that reads, while megabytes of cache
    were there to evict, and no client was counted as evicted."""
    server = start("--max-memory", "2m", "--max-line", "1k")
    filler = server.client()
    fill_the_cache(filler, 2 << 20)
    sub, pub = server.client(), server.client()
    subscribe(sub, "t")
    n = 1100   # one write, one read: the queue grows 8, 16 ... 2048 slots in one iteration
    pub.send("".join(cmd(command="send", topic="t", msg="m", delivery="all", cache=False)
                     for _ in range(n)))
    got = []
    try:
        while len(got) < n:
            line = sub.raw_line(timeout=5)
            if not line:
                break
            got.append(json.loads(line))
    except OSError:
        pass
    assert len(got) == n, (
        f"the subscriber got {len(got)} of {n} lines; log: {server.stderr()[-600:]}")


def test_the_metrics_endpoint_goes_dark_at_the_budget(start):
    """README: mqd_memory_used_bytes and the eviction counters are there for
    operators to watch the budget. But the metrics response is allocated
    through the allocator's ceiling (httpd.c build_response, mqd_malloc) with
    no room made for it: once the caches have filled the budget -- the
    steady state of a busy server -- a scrape bigger than the ceiling's
    slack (one --max-line) is dropped without a response, exactly when the
    figures matter. Nothing is wrong with the server but the budget."""
    server = start("--max-memory", "2m", "--max-line", "1k", "--metrics", "127.0.0.1:0")
    assert metric(server, "mqd_cache_evictions_total") == 0   # it answers before
    filler = server.client()
    fill_the_cache(filler, 2 << 20)
    # the server is idle and well: a send still works
    send(filler, "fill0", "x")
    assert metric(server, "mqd_cache_evictions_total") > 0


def test_a_send_nobody_keeps_is_refused_as_one_topic_too_many(start):
    """PROTOCOL.md: "A command that would bring one more topic alive (a topic
    with subscribers or cached messages) past the maximum number of topics:
    Too many topics". A send with cache false to a topic nobody subscribes to
    brings nothing alive (it is delivered to nobody and the topic is freed at
    once), yet create_topic counts it against --max-topics and refuses it."""
    server = start("--max-topics", "1")
    c = server.client()
    subscribe(c, "a")
    assert c.request(command="send", topic="b", msg="m", delivery="all", cache=False) == OK


def test_many_connections_each_under_the_eviction_minimum_deny_everyone(start):
    """budget.h: when a command does not fit, the budget evicts cached
    messages, then disconnects the client holding the most; clients under
    CONN_EVICT_MIN (64 KiB) "are not worth it and stay". So an attacker who
    spreads the budget over many connections, each holding a 16 KiB
    unfinished line (and a few holding a smaller one to fill the last gap),
    is never evicted: every later command of a well-behaved client is
    answered Out of memory, for as long as the attacker keeps its sockets
    open. HARDENING.md's promise that the pair beside an attack loses nothing
    does not hold for this attack."""
    server = start("--max-memory", "4m")
    pub, sub = server.client(), server.client()
    subscribe(sub, "pair")
    send(pub, "pair", "before")
    assert sub.line()["msg"] == "before"
    attackers = []

    # sync() sends a newline, which would end the partial line: send the
    # partial line after it instead
    def attack_after_sync(part):
        for _ in range(2000):
            try:
                a = server.client()
                attackers.append(a)
                a.sync()
                a.send(part)
                a.sock.settimeout(0.05)
                try:
                    got = a.sock.recv(100)   # a refusal would come back at once
                except TimeoutError:
                    got = None
                a.sock.settimeout(10)
                if got is not None:
                    return
            except OSError:
                return
        raise AssertionError("the server never refused")

    attack_after_sync(b"{" + b"a" * 16000)
    attack_after_sync(b"{" + b"b" * 1000)
    attack_after_sync(b"{" + b"c" * 100)
    reply = pub.request(command="send", topic="pair", msg="after", delivery="all", cache=False)
    assert reply == OK, f"the pair was refused while {len(attackers)} attackers stay: {reply}"
    for a in attackers:
        a.close()


def test_at_the_budget_a_replay_cuts_the_subscriber_it_is_for(start):
    """The same gap as the fan-out's, on a subscribe: its room is made for
    the topic and the subscription (line_len 0), not for the replay's lines
    entering the subscriber's queue. With the caches full, a new subscriber
    asking for the 300 cached messages of its topic is disconnected "out of
    memory for its output" partway, although the cache of other topics
    could have been evicted to make room."""
    server = start("--max-memory", "2m", "--max-line", "1k", "--cache-size", "300")
    p = server.client()
    fill_the_cache(p, 2 << 20, topics=20)
    for i in range(0, 300, 50):   # the newest cached: evicted last
        p.send("".join(cmd(command="send", topic="r", msg=f"r{i + k}", delivery="all")
                       for k in range(50)))
        for _ in range(50):
            assert p.line() == OK
    r = server.client()
    r.cmd(command="subscribe", topic="r", last_seen=-1)
    got = []
    try:
        while (line := r.raw_line(timeout=5)):
            got.append(json.loads(line))
            if len(got) == 1 + 300:
                break
    except OSError:
        pass
    assert len(got) == 1 + 300, (
        f"{got[:1]} and {max(len(got) - 1, 0)} of 300 replayed; {server.stderr()[-300:]}")
