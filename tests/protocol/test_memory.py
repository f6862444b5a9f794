"""--max-memory, the topic quotas and retired topics (docs/PROTOCOL.md, Limits).

Each attack runs against a server with a 64 MiB budget while a well-behaved
publisher/subscriber pair keeps exchanging indexed messages beside it: the pair
must lose nothing and see every index in order, the memory mqd counts must
never pass the budget plus one line, and its RSS must stay under the budget
plus RSS_SLACK. After the attacker leaves, a new client subscribes and sends
messages of every size.

Under AddressSanitizer RSS means shadow memory and quarantine as well, so there
only the figure mqd counts (mqd_memory_used_bytes) is held to the bound; the
same tests check RSS too in the plain build, which CI runs first."""

import json
import os
import re
import socket
import threading
import time

import pytest

from mqd_harness import (OK, TIMEOUT, Server, http_request, metric, metrics_port, run_mqd,
                         send, subscribe)

MiB = 1024 * 1024
BUDGET = 64 * MiB
MAX_LINE = 1 * MiB
# what RSS may hold beyond the budget: the program, its libraries and stacks
# (about 3 MiB), the heap's own bookkeeping and the fragmentation of freed
# blocks not yet returned
RSS_SLACK = 32 * MiB
NO_MEMORY = {"success": False, "reason": "Out of memory"}
TOPIC_TOO_LONG = {"success": False, "reason": "Topic too long"}
TOO_MANY_TOPICS = {"success": False, "reason": "Too many topics"}
TOO_MANY_SUBSCRIPTIONS = {"success": False, "reason": "Too many subscriptions"}
SANITIZED = os.environ.get("MQD_SANITIZED", "") in ("1", "ON", "TRUE", "YES")



class Watch:
    """Samples, every few milliseconds until stopped, the server's RSS and
    the memory it counts, keeping the highest of each."""

    def __init__(self, server):
        self.server = server
        self.max_rss = 0
        self.max_used = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping.is_set():
            self.sample()
            time.sleep(0.01)

    def sample(self):
        self.max_rss = max(self.max_rss, self.server.rss_kib() * 1024)
        self.max_used = max(self.max_used, metric(self.server, "mqd_memory_used_bytes"))

    def stop(self):
        self.stopping.set()
        self.thread.join(TIMEOUT)
        self.sample()

    def assert_within(self, budget=BUDGET, max_line=MAX_LINE):
        assert self.max_used > 0
        assert self.max_used <= budget + max_line + 33, self.max_used
        if not SANITIZED:
            assert self.max_rss <= budget + RSS_SLACK, self.max_rss


class Pair:
    """A publisher and a subscriber of their own topic, exchanging one message
    at a time in a thread: every message must come back, in index order."""

    def __init__(self, server, topic="pair"):
        self.pub, self.sub = server.client(), server.client()
        subscribe(self.sub, topic)
        self.topic = topic
        self.exchanged = 0
        self.failure = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _exchange(self):
        msg = f"m{self.exchanged}"
        reply = self.pub.request(command="send", topic=self.topic, msg=msg, delivery="all",
                                 cache=False)
        assert reply == OK, reply
        got = self.sub.line()
        assert (got["index"], got["msg"]) == (self.exchanged, msg), got
        self.exchanged += 1

    def _run(self):
        try:
            while not self.stopping.is_set():
                self._exchange()
                time.sleep(0.002)
        except Exception as e:   # reported by finish()
            self.failure = repr(e)

    def finish(self):
        """Stops the pair, checks it lost nothing, exchanges once more."""
        self.stopping.set()
        self.thread.join(TIMEOUT * 3)
        assert not self.thread.is_alive()
        assert self.failure is None, self.failure
        assert self.exchanged > 0
        self._exchange()
        self.pub.close()
        self.sub.close()


@pytest.fixture
def budgeted(start):
    """A server with a 64 MiB budget and metrics, a pair beside it, and a
    watch on its memory."""
    def _start(*args):
        server = start("--max-memory", "64m", "--metrics", "127.0.0.1:0", *args)
        return server, Pair(server), Watch(server)
    return _start


def every_size_works(server):
    """After an attack: a new client subscribes, and sends messages of every
    size up to the line limit, cached, and receives them."""
    p, r = server.client(), server.client()
    subscribe(r, "after")
    for size in (0, 1, 1000, 64 * 1024, 512 * 1024, MAX_LINE - 200):
        send(p, "after", "x" * size)
        assert len(r.line()["msg"]) == size
    p.close()
    r.close()


def send_pipelined(client, commands, batch=500):
    """Sends the commands in batches, reading each batch's replies; returns
    the replies."""
    replies = []
    for i in range(0, len(commands), batch):
        chunk = commands[i:i + batch]
        client.send("".join(chunk))
        replies += [client.line() for _ in chunk]
    return replies


def cmd(**fields):
    return json.dumps(fields) + "\n"


# --- the attacks ---

def test_many_new_topics_each_with_a_message(budgeted):
    server, pair, watch = budgeted()
    attacker = server.client()
    body = "x" * 1024
    replies = send_pipelined(attacker, [
        cmd(command="send", topic=f"t{i}", msg=body, delivery="all") for i in range(100000)])
    assert all(r == OK for r in replies)   # room was made: the oldest went
    assert metric(server, "mqd_cache_evictions_total") > 0
    watch.stop()
    pair.finish()
    watch.assert_within()
    attacker.close()
    every_size_works(server)


def test_large_cached_messages_on_many_topics(budgeted):
    server, pair, watch = budgeted()
    attacker = server.client()
    body = "y" * (100 * 1024)
    replies = send_pipelined(attacker, [
        cmd(command="send", topic=f"big{i % 1000}", msg=body, delivery="all")
        for i in range(1500)], batch=50)
    assert all(r == OK for r in replies)
    assert metric(server, "mqd_cache_evictions_total") > 0
    assert metric(server, "mqd_cached_bytes") <= BUDGET
    watch.stop()
    pair.finish()
    watch.assert_within()
    attacker.close()
    # the cache outlives its sender, but never at the others' expense
    c = server.client()
    for i in range(20):
        send(c, f"new{i}", body)
    c.close()
    every_size_works(server)


def test_long_topic_names_are_refused(budgeted):
    server, pair, watch = budgeted("--cache-size", "0")
    attacker = server.client()
    name = "n" * (MAX_LINE - 200)
    for i in range(50):
        assert attacker.request(command="send", topic=name + str(i), msg="", delivery="all",
                                cache=False) == TOPIC_TOO_LONG
    watch.stop()
    pair.finish()
    watch.assert_within()
    assert metric(server, "mqd_protocol_errors_total{reason=\"topic_too_long\"}") == 50
    attacker.close()
    every_size_works(server)


def test_long_topic_names_allowed_cost_only_their_index(budgeted):
    """Even with long names allowed, a topic nobody listens to and nothing
    caches keeps nothing but its index."""
    server, pair, watch = budgeted("--cache-size", "0", "--max-topic-length", "1m")
    attacker = server.client()
    name = "n" * (MAX_LINE - 200)
    for i in range(100):
        send(attacker, name + str(i), "", cache=False)
    assert metric(server, "mqd_topics") == 1   # the pair's
    assert metric(server, "mqd_retired_topics") == 100
    watch.stop()
    pair.finish()
    watch.assert_within()
    assert watch.max_used < 16 * MiB   # two names at a time, never a hundred
    attacker.close()
    every_size_works(server)


def test_unfinished_lines_from_many_connections(budgeted):
    server, pair, watch = budgeted()
    attackers = [server.client() for _ in range(100)]
    part = b"{" + b"z" * (MAX_LINE - 2)   # one byte short of the limit, no newline
    cut = 0
    for a in attackers:
        try:
            a.send(part)
        except OSError:   # already disconnected to make room
            cut += 1
    server.wait_until(lambda: metric(server, "mqd_clients_evicted_total") >= 30,
                      "clients evicted")
    watch.stop()
    pair.finish()
    watch.assert_within()
    assert "disconnected: it held the most memory" in server.stderr()
    for a in attackers:
        a.close()
    every_size_works(server)


def test_subscribers_that_never_read(budgeted):
    server, pair, watch = budgeted("--max-output", "8m")
    readers_not = []
    for i in range(30):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(TIMEOUT)
        s.connect(("127.0.0.1", server.port))
        s.sendall(cmd(command="subscribe", topic=f"stuck{i}").encode())
        readers_not.append(s)
    publisher = server.client()
    body = "w" * (100 * 1024)
    sent = 0
    while metric(server, "mqd_clients_evicted_total") < 5:
        assert sent < 4000, "nobody was evicted"
        replies = send_pipelined(publisher, [
            cmd(command="send", topic=f"stuck{(sent + k) % 30}", msg=body, delivery="all",
                cache=False) for k in range(60)], batch=60)
        assert all(r == OK for r in replies)
        sent += 60
    watch.stop()
    pair.finish()
    watch.assert_within()
    for s in readers_not:
        s.close()
    publisher.close()
    every_size_works(server)


def test_a_hundred_thousand_subscriptions_and_memory_given_back(start):
    server = start("--max-memory", "16m", "--metrics", "127.0.0.1:0")
    pair = Pair(server)
    watch = Watch(server)
    before = server.rss_kib() * 1024
    attacker = server.client()
    attacker.send("".join(cmd(command="subscribe", topic=f"s{i}", cache=False)
                          for i in range(100000)))
    # it is the one holding the most: cut before it holds the budget
    attacker.drain()
    assert metric(server, "mqd_clients_evicted_total") == 1
    watch.stop()
    pair.finish()
    watch.assert_within(budget=16 * MiB)
    server.wait_until(lambda: metric(server, "mqd_subscriptions") == 0, "subscriptions gone")
    assert metric(server, "mqd_memory_used_bytes") < 2 * MiB
    if not SANITIZED:   # freed memory goes back to the system
        assert server.rss_kib() * 1024 < before + 4 * MiB
    every_size_works(server)


# --- the rules the attacks rely on ---

def test_eviction_takes_the_oldest_first_across_topics(start):
    server = start("--max-memory", "4m", "--metrics", "127.0.0.1:0")
    c = server.client()
    body = "e" * (64 * 1024)
    order = []   # (topic, index) in the order sent: a hundred to a, then both
    for i in range(200):
        topic = "a" if i < 100 else "ab"[i % 2]
        send(c, topic, body)
        order.append((topic, sum(1 for t, _ in order if t == topic)))
    assert metric(server, "mqd_cache_evictions_total") > 0
    held = []
    for topic in "ab":
        r = server.client()
        subscribe(r, topic)
        r.cmd(command="unsubscribe", topic="\x01sync")   # its reply ends the replay
        while (line := r.line()) != OK:
            held.append((topic, line["index"]))
        r.close()
    # what survives is the newest messages, whatever their topic: the end of
    # the order in which they were sent
    assert sorted(held, key=order.index) == order[-len(held):]
    assert 0 < len(held) < 200


def test_a_replay_after_eviction_starts_at_the_oldest_still_held(start):
    server = start("--max-memory", "4m", "--metrics", "127.0.0.1:0")
    c = server.client()
    for i in range(100):
        send(c, "r", "r" * (64 * 1024))
    evicted = metric(server, "mqd_cache_evictions_total")
    assert 0 < evicted < 100
    r = server.client()
    subscribe(r, "r", last_seen=-1)
    first = r.line()
    assert first["index"] == evicted
    subscribe(c, "r", last_seen=98)
    assert c.line()["index"] == 99


def test_an_evicted_one_message_is_counted_and_logged(start):
    server = start("--max-memory", "4m", "--metrics", "127.0.0.1:0")
    c = server.client()
    send(c, "first", "o" * 1000, delivery="one")   # nobody there: cached
    for i in range(100):
        send(c, "filler", "f" * (64 * 1024))
    assert metric(server, "mqd_cache_evicted_one_total") == 1
    server.wait_for_log('a delivery "one" message was evicted from the cache')
    r = server.client()
    subscribe(r, "first")   # it is gone: nothing to replay
    r.sync()


def test_max_topics(start):
    server = start("--max-topics", "3", "--metrics", "127.0.0.1:0")
    c = server.client()
    subscribe(c, "a")
    send(c, "b", "kept")   # alive through its cache
    subscribe(c, "c")
    assert c.request(command="subscribe", topic="d") == TOO_MANY_TOPICS
    assert c.request(command="send", topic="d", msg="m", delivery="all") == TOO_MANY_TOPICS
    assert c.request(command="send", topic="a", msg="m", delivery="all")["index"] == 0
    assert c.line() == OK   # existing topics go on
    assert c.request(command="unsubscribe", topic="c") == OK
    subscribe(c, "d")
    assert metric(server, "mqd_topics") == 3
    assert metric(server, "mqd_protocol_errors_total{reason=\"too_many_topics\"}") == 2


def test_max_subscriptions_is_per_connection(start):
    server = start("--max-subscriptions", "1000", "--metrics", "127.0.0.1:0")
    c, d = server.client(), server.client()
    replies = send_pipelined(c, [cmd(command="subscribe", topic=f"s{i}") for i in range(1001)])
    assert replies[:1000] == [OK] * 1000
    assert replies[1000] == TOO_MANY_SUBSCRIPTIONS
    subscribe(c, "s5")   # again: not one more
    subscribe(d, "s1000")   # another connection has its own
    assert c.request(command="unsubscribe", topic="s0") == OK
    subscribe(c, "s1000")
    assert metric(server, "mqd_subscriptions") == 1001
    assert metric(server, "mqd_protocol_errors_total{reason=\"too_many_subscriptions\"}") == 1


def test_max_topic_length_counts_decoded_bytes_in_every_command(start):
    server = start("--max-topic-length", "10")
    c = server.client()
    subscribe(c, "0123456789")
    subscribe(c, "\u00e9" * 5)   # ten bytes of UTF-8
    # escapes count as what they decode to: twelve characters, ten bytes
    c.send('{"command":"subscribe","topic":"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"}\n')
    assert c.line() == OK
    for command in ("subscribe", "unsubscribe"):
        assert c.request(command=command, topic="01234567890") == TOPIC_TOO_LONG
    assert c.request(command="send", topic="\u00e9" * 6, msg="m",
                     delivery="one") == TOPIC_TOO_LONG
    c.sync()


def test_a_topic_nobody_holds_is_freed_and_keeps_its_index(start):
    server = start("--metrics", "127.0.0.1:0")
    c = server.client()
    for i in range(3):
        send(c, "quiet", "m", cache=False)
    assert metric(server, "mqd_topics") == 0
    assert metric(server, "mqd_retired_topics") == 1
    subscribe(c, "quiet")
    assert c.request(command="send", topic="quiet", msg="m", delivery="all")["index"] == 3
    assert c.line() == OK
    before = metric(server, "mqd_memory_used_bytes")
    for i in range(10000):
        c.cmd(command="send", topic=f"gone{i}", msg="m", delivery="all", cache=False)
    for i in range(10000):
        assert c.line() == OK
    # 10,000 topics kept as 16-byte indexes in a half-empty table
    assert metric(server, "mqd_memory_used_bytes") - before < 10000 * 40
    assert metric(server, "mqd_retired_topics") == 10000
    r = server.client()
    subscribe(r, "gone9999")
    send(c, "gone9999", "m")
    assert r.line()["index"] == 1


def test_a_subscriber_cut_during_its_replay_leaves_the_one_messages_it_did_not_take(start):
    server = start("--max-output", "1k", "--max-line", "900", "--metrics", "127.0.0.1:0")
    p = server.client()
    for i in range(3):
        send(p, "jobs", str(i) * 500, delivery="one")   # nobody there: cached
    a = server.client()
    a.cmd(command="subscribe", topic="jobs")
    assert a.at_eof()   # cut as a slow consumer by its second line
    server.wait_until(lambda: metric(server, "mqd_connections") == 1, "a gone")
    # 1 and 2 were never handed to it and stay; 0 was, but none of it was
    # written, so it goes back to the cache (PROTOCOL.md, Disconnect): each
    # is there once
    assert metric(server, "mqd_cached_messages") == 3
    _, _, body = http_request(metrics_port(server))
    assert 'mqd_one_returned_total{to="cache"} 1\n' in body.decode()
    c = server.client()
    c.cmd(command="subscribe", topic="jobs", last_seen=1)
    assert c.line() == OK
    got = c.line()
    assert (got["index"], got["msg"]) == (2, "2" * 500)
    assert metric(server, "mqd_cached_messages") == 2


# --- at the budget: what one command takes, besides its line ---

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


def test_at_the_budget_a_fan_out_makes_room_for_the_receivers_queues(start):
    """A send's room includes what its receivers' queues grow by (a slot
    array doubling), so at the budget the cache is evicted for it: a reader
    that reads is never cut "out of memory for its output" while cached
    messages were there to evict."""
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


def test_the_metrics_endpoint_answers_at_the_budget(start):
    """A scrape's response is made room for from the caches: once they have
    filled the budget (the steady state of a busy server), /metrics still
    answers, when its figures matter most."""
    server = start("--max-memory", "2m", "--max-line", "1k", "--metrics", "127.0.0.1:0")
    assert metric(server, "mqd_cache_evictions_total") == 0   # it answers before
    filler = server.client()
    fill_the_cache(filler, 2 << 20)
    # the server is idle and well: a send still works
    send(filler, "fill0", "x")
    assert metric(server, "mqd_cache_evictions_total") > 0


def test_a_send_that_keeps_nothing_alive_passes_max_topics(start):
    """Only a command that would bring one more topic alive counts against
    --max-topics: a send with cache false to a topic nobody subscribes to is
    delivered to nobody and its topic freed at once."""
    server = start("--max-topics", "1")
    c = server.client()
    subscribe(c, "a")
    assert c.request(command="send", topic="b", msg="m", delivery="all", cache=False) == OK


def test_many_small_holders_are_disconnected_too(start):
    """An attacker that spreads the budget over many connections, each
    holding a 16 KiB unfinished line, is disconnected biggest first like one
    big holder: the pair beside it is never refused."""
    server = start("--max-memory", "4m", "--metrics", "127.0.0.1:0")
    pub, sub = server.client(), server.client()
    subscribe(sub, "pair")
    attackers = []
    for i in range(400):   # 6.4 MB of unfinished lines against 4 MiB
        a = server.client()
        attackers.append(a)
        try:
            a.send(b"{" + b"a" * 16000)
        except OSError:
            pass
        if i % 20 == 0:
            reply = pub.request(command="send", topic="pair", msg=str(i), delivery="all",
                                cache=False)
            assert reply == OK, f"the pair was refused beside {i} attackers: {reply}"
            assert sub.line()["msg"] == str(i)
    assert metric(server, "mqd_clients_evicted_total") > 0
    for a in attackers:
        a.close()


def test_at_the_budget_a_replay_makes_room_for_the_subscribers_queue(start):
    """A subscribe's room includes its reply and the replay of the whole
    cache into its queue: with the caches full, a new subscriber asking for
    the 300 cached messages of its topic gets all of them, the caches of
    other topics evicted to make room."""
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


# --- the figures and the start ---

def test_max_output_below_the_longest_line_stops_the_start():
    status, _, err = run_mqd("--max-output", "1k")
    assert status == 2
    assert err.count("\n") == 1
    assert "--max-output 1024" in err and "--max-line 1048576" in err
    assert run_mqd("--max-line", "1k", "--max-output", "1056", "--port", "0")[0] == 2


def test_an_invalid_budget_is_refused():
    for value in ("1023k", "-1", "lots"):
        status, _, err = run_mqd("--max-memory", value)
        assert status == 2 and "--max-memory" in err


def machine_memory():
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def own_cgroup_limit():
    """The lowest memory limit of this process's cgroups (v1 or v2); None
    when there is none. mqd, started from here, is in the same cgroups."""
    lowest = None
    for line in open("/proc/self/cgroup").read().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            root, name = "/sys/fs/cgroup", "memory.max"
        elif "memory" in controllers.split(","):
            root, name = "/sys/fs/cgroup/memory", "memory.limit_in_bytes"
        else:
            continue
        parts = path.strip("/").split("/") if path.strip("/") else []
        for i in range(len(parts), -1, -1):
            try:
                text = open(os.path.join(root, *parts[:i], name)).read().strip()
            except OSError:
                continue
            if text != "max" and int(text) < 1 << 60:
                lowest = int(text) if lowest is None else min(lowest, int(text))
    return lowest


def test_the_default_budget_is_half_the_machine_or_the_cgroup(start):
    server = start("--metrics", "127.0.0.1:0")
    limit = own_cgroup_limit()
    if limit is not None and limit < machine_memory():
        want, why = limit // 2, "half of the cgroup's memory limit"
    else:
        want, why = machine_memory() // 2, "half of the machine's"
    assert metric(server, "mqd_memory_limit_bytes") == want
    assert f"INFO memory budget: {want} bytes" in server.stderr()
    assert why in server.stderr()


def test_no_budget_with_zero(start):
    server = start("--max-memory", "0", "--metrics", "127.0.0.1:0")
    assert metric(server, "mqd_memory_limit_bytes") == 0
    assert "INFO memory budget: none (--max-memory 0)" in server.stderr()
    c = server.client()
    send(c, "t", "x" * 1000)


@pytest.fixture
def memory_cgroup():
    """A v1 memory cgroup with a 256 MiB limit that a process can join, made
    for the test and removed after it; skips, saying why, where none can be
    made (it needs root and a writable memory controller, as CI has)."""
    base = "/sys/fs/cgroup/memory"
    path = os.path.join(base, f"mqd-test-{os.getpid()}")
    try:
        os.mkdir(path)
    except OSError as e:
        pytest.skip(f"cannot make a memory cgroup under {base}: {e}")
    try:
        with open(os.path.join(path, "memory.limit_in_bytes"), "w") as f:
            f.write(str(256 * MiB))
        yield path
    finally:
        for _ in range(100):   # the server's exit takes it out of the cgroup
            try:
                os.rmdir(path)
                break
            except OSError:
                time.sleep(0.05)


def test_the_default_budget_follows_a_cgroup_limit(start, memory_cgroup):
    def join():
        with open(os.path.join(memory_cgroup, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
    server = start("--metrics", "127.0.0.1:0", preexec_fn=join)
    assert metric(server, "mqd_memory_limit_bytes") == 128 * MiB
    assert "half of the cgroup's memory limit, 0.2 GiB" in server.stderr()
    server.stop()
