"""SIGKILL at a random moment while clients work: with --data-dir, a crash
loses nothing any client was told, under every --fsync policy (README.md,
Persistence; include/mqd/store.h).

For each policy, 100 rounds on one data directory: three publishers pipeline
sends (delivery "all" to three cached topics, "all" with cache false to a
fourth, "one" to a topic nobody subscribes to) while a subscriber takes the
first four's deliveries; mqd is killed 0 to 150 ms in (two times in three
just after a burst, while it is likely busy with it); the clients read what
had reached them; mqd restarts on the directory, which must load. Then every
send whose reply came back is replayed with its fields and an index, every
delivery with its index and bytes, everything an earlier round found is
still there byte for byte, every acknowledged "one" message is handed out
exactly once, an index never names two messages, and a send to each topic
gets an index above every one seen. At the end a clean stop and start
keep it all. Compaction runs through it all (a small --compact-min), so
kills also land while a child writes a snapshot."""

import json
import os
import random
import select
import signal
import time

import pytest

from mqd_harness import OK, TIMEOUT, Server, subscribe

POLICIES = ["always", "everysec", "no"]
ROUNDS = 100
RUN_FOR = 0.150   # the longest a round's clients run before the kill, in seconds
CACHED = ["a", "b", "c"]   # delivery "all", cached
QUIET = "quiet"            # delivery "all", cache false: only its index is kept
JOBS = "jobs"              # delivery "one", nobody subscribed: cached until taken
TOPICS = CACHED + [QUIET, JOBS]
OK_LINE = b'{"success": true}\r\n'
# msg texts: the round and sequence number make each one unique; the tails
# bring escapes, non-ASCII and longer records into the log
TAILS = ["", " tab\t", " \u00e9t\u00e9", " \U0001F600", " \"q\" \\", " nul\u0000", " " + "x" * 3000]
CHUNKS = [1, 1, 2, 3, 5, 8, 20, 50, 400]   # commands written at once


def short(value):
    """A msg, a line or a command, cut to a length an error message can show."""
    text = repr(value)
    return text if len(text) <= 100 else text[:100] + "..."


def read_to_end(client):
    """Everything the (killed) server's connection still delivers."""
    data = [client.buf]
    client.sock.setblocking(True)
    client.sock.settimeout(TIMEOUT)
    try:
        while chunk := client.sock.recv(1 << 20):
            data.append(chunk)
    except ConnectionResetError:
        pass
    client.close()
    return b"".join(data)


def whole_lines(data):
    """The complete "\\r\\n"-ended lines of a stream, each with its "\\r\\n";
    a line the kill cut short was not received."""
    return [line + b"\r\n" for line in data.split(b"\r\n")[:-1]]


def read_replies(client, n):
    """The bytes up to and including the n-th reply, whatever lines come
    between (a delivered line never ends in `{"success": true}`)."""
    data = bytearray(client.buf)
    client.buf = b""
    client.sock.settimeout(TIMEOUT)
    while not (data.endswith(OK_LINE) and data.count(OK_LINE) == n):
        chunk = client.sock.recv(1 << 20)
        assert chunk, f"connection closed before {n} replies: {bytes(data[-300:])!r}"
        data += chunk
    return bytes(data)


class Publisher:
    """One connection pipelining sends without waiting; the replies say
    which of them were done."""

    def __init__(self, server, name, round, rng):
        self.client = server.client()
        self.client.sock.setblocking(False)
        self.name = name
        self.round = round
        self.rng = rng
        self.sent = []   # the fields of each command written, in order
        self.out = b""
        self.data = bytearray()
        self.seq = 0
        # when each burst is queued: spread past the kill, so it comes mid-flow
        self.bursts = sorted((rng.uniform(0, RUN_FOR * 1.3), rng.choice(CHUNKS))
                             for _ in range(rng.randrange(12)))

    def queue_burst(self, size):
        for _ in range(size):
            pick = self.rng.random()
            topic = self.rng.choice(CACHED) if pick < 0.8 else QUIET if pick < 0.9 else JOBS
            fields = {"command": "send", "topic": topic,
                      "msg": f"{self.name}-r{self.round}-{self.seq}{self.rng.choice(TAILS)}",
                      "delivery": "one" if topic == JOBS else "all"}
            if topic == QUIET:
                fields["cache"] = False
            elif self.rng.random() < 0.2:
                fields["cache"] = True
            self.seq += 1
            self.sent.append(fields)
            self.out += (json.dumps(fields, ensure_ascii=self.rng.random() < 0.5) + "\n").encode()

    def write(self):
        try:
            n = self.client.sock.send(self.out)
            self.out = self.out[n:]
        except BlockingIOError:
            pass

    def read(self):
        try:
            chunk = self.client.sock.recv(1 << 20)
        except BlockingIOError:
            return
        assert chunk, "the server closed a publisher before the kill"
        self.data += chunk

    def acknowledged(self, tail):
        """The sends whose reply came back: each reply answers the next
        command written, and every send here succeeds."""
        replies = whole_lines(bytes(self.data) + tail)
        assert all(r == OK_LINE for r in replies), [r for r in replies if r != OK_LINE][:3]
        assert len(replies) <= len(self.sent)
        return self.sent[:len(replies)]


class History:
    """What the whole test has seen of the directory's topics."""

    def __init__(self):
        self.msgs = {t: {} for t in TOPICS}       # topic: {index: msg}, ever
        self.where = {}                           # msg: (topic, index)
        self.cached = {t: {} for t in CACHED}     # topic: {index: the replayed line}
        self.replayed = {t: bytearray() for t in CACHED}   # their replay, byte for byte
        self.taken = set()                        # "one" msgs handed out
        self.told = {t: set() for t in TOPICS}    # msgs acknowledged or delivered

    def seen(self, topic, index, msg):
        """One (index, msg) told by the server: an index names one message."""
        had = self.msgs[topic].setdefault(index, msg)
        assert had == msg, f"{topic} index {index} given to {short(had)} and {short(msg)}"
        assert self.where.setdefault(msg, (topic, index)) == (topic, index), \
            f"{short(msg)} came back as {self.where[msg]} and as {(topic, index)}"

    def top(self, topic):
        return max(self.msgs[topic], default=-1)

    def cache(self, topic, line):
        """One line of a topic's replay, after those already found."""
        m = json.loads(line)
        self.seen(topic, m["index"], m["msg"])
        last = next(reversed(self.cached[topic]), -1)
        assert m["index"] > last, f"{topic} replayed index {m['index']} after {last}"
        self.cached[topic][m["index"]] = line
        self.replayed[topic] += line


def explain_loss(history, topic, replay):
    """What a replay lacks of what earlier rounds found, said plainly."""
    now = {}
    for line in whole_lines(replay):
        now[json.loads(line)["index"]] = line
    for index, line in history.cached[topic].items():
        if now.get(index) != line:
            return f"{topic} index {index} was {short(line)}, after the restart {short(now.get(index))}"
    return f"{topic} replay changed, {len(now)} lines"


def check_restart(server, history, round, acked, delivered, sent):
    """After a restart: all told is there, nothing told twice, no index reused."""
    checker = server.client()
    checker.send("".join(json.dumps({"command": "subscribe", "topic": t}) + "\n"
                         for t in CACHED + [JOBS]) +
                 json.dumps({"command": "subscribe", "topic": QUIET, "cache": False}) + "\n")
    data = read_replies(checker, 5)
    segments = data.split(OK_LINE)
    # the cache false topic's subscribe replays nothing: it ends the stream
    assert len(segments) == 6 and segments[0] == segments[5] == b"", short(data)
    replays = dict(zip(CACHED + [JOBS], segments[1:5]))

    # the caches of earlier rounds, byte for byte, then this round's sends
    found = {}
    for topic in CACHED:
        replay = replays[topic]
        old = bytes(history.replayed[topic])
        assert replay.startswith(old), explain_loss(history, topic, replay)
        for line in whole_lines(replay[len(old):]):
            history.cache(topic, line)
            m = json.loads(line)
            assert m["msg"] in sent, f"{short(m['msg'])} is not from round {round}, or came back late"
            found[m["msg"]] = m
        assert len(old) + sum(map(len, whole_lines(replay[len(old):]))) == len(replay)

    # "one" messages: each handed out once, ever
    for line in whole_lines(replays[JOBS]):
        m = json.loads(line)
        history.seen(JOBS, m["index"], m["msg"])
        assert m["msg"] not in history.taken, f"{short(m['msg'])} handed out twice"
        assert m["msg"] in sent, f"{short(m['msg'])} is not from round {round}, or came back late"
        history.taken.add(m["msg"])
        found[m["msg"]] = m
    indexes = [json.loads(line)["index"] for line in whole_lines(replays[JOBS])]
    assert indexes == sorted(set(indexes)), f"{JOBS} replayed out of order: {indexes}"

    # every acknowledged send is there, as sent, and a publisher's sends to a
    # topic have indexes in the order it sent them
    last = {}
    for pub, fields in acked:
        history.told[fields["topic"]].add(fields["msg"])
        if fields["topic"] == QUIET:
            continue   # nothing to find: its index is checked below
        m = found.get(fields["msg"])
        assert m is not None, f"acknowledged send lost: {short(fields)}"
        assert m == {**fields, "index": m["index"]}, f"sent {short(fields)}, replayed {short(m)}"
        key = (pub, fields["topic"])
        assert m["index"] > last.get(key, -1), f"{short(fields)} out of its publisher's order"
        last[key] = m["index"]

    # every delivery is there byte for byte; the cache false ones kept their index
    for line in delivered:
        m = json.loads(line)
        topic = m["topic"]
        history.seen(topic, m["index"], m["msg"])
        history.told[topic].add(m["msg"])
        if topic in CACHED:
            assert history.cached[topic].get(m["index"]) == line, \
                f"delivered {short(line)}, replayed {short(history.cached[topic].get(m['index']))}"

    # a send to each topic, once restarted, gets an index above every one seen,
    # and above as many as the messages told, each with an index of its own
    # (the checker is the only subscriber of JOBS: the "one" probe is its)
    probes = [{"command": "send", "topic": t, "msg": f"probe-r{round}-{t}",
               "delivery": "one" if t == JOBS else "all"} for t in TOPICS]
    probes[TOPICS.index(QUIET)]["cache"] = False
    checker.send("".join(json.dumps(p) + "\n" for p in probes))
    got = whole_lines(read_replies(checker, len(probes)))
    assert len(got) == 2 * len(probes) and got[1::2] == [OK_LINE] * len(probes), got
    for probe, line in zip(probes, got[0::2]):
        m = json.loads(line)
        topic = probe["topic"]
        assert m == {**probe, "index": m["index"]}, (probe, m)
        assert m["index"] > history.top(topic), \
            f"{topic}: index {m['index']} handed out after {history.top(topic)} was seen"
        assert m["index"] >= len(history.told[topic]), \
            f"{topic}: index {m['index']} handed out after {len(history.told[topic])} told"
        history.told[topic].add(m["msg"])
        if topic in CACHED:
            history.cache(topic, line)
        else:
            history.seen(topic, m["index"], m["msg"])
            if topic == JOBS:
                history.taken.add(m["msg"])
    # later "one" sends wait in the cache again
    assert checker.request(command="unsubscribe", topic=JOBS) == OK
    checker.close()


def load_and_kill(server, history, round, rng):
    """Three publishers and a subscriber run until a SIGKILL at a random
    moment: what the publishers were acknowledged, the lines delivered, and
    every msg sent."""
    sub = server.client()
    for topic in CACHED:   # nothing above what was seen is cached: no replay
        subscribe(sub, topic, last_seen=history.top(topic))
    subscribe(sub, QUIET)
    sub.sock.setblocking(False)
    pubs = [Publisher(server, f"p{i}", round, rng) for i in range(3)]
    sub_data = bytearray()
    start = time.monotonic()
    # a kill while mqd is idle tests little: two times in three it comes soon
    # after a burst, the bigger the likelier, while mqd is likely at it
    bursts = [b for p in pubs for b in p.bursts if b[0] < RUN_FOR]
    if bursts and rng.random() < 2 / 3:
        at, _ = rng.choices(bursts, weights=[size for _, size in bursts])[0]
        kill_at = start + at + rng.uniform(0, 0.002)
    else:
        kill_at = start + rng.uniform(0, RUN_FOR)
    while (now := time.monotonic()) < kill_at:
        for p in pubs:
            while p.bursts and start + p.bursts[0][0] <= now:
                p.queue_burst(p.bursts.pop(0)[1])
            if p.out:
                p.write()
        due = [start + p.bursts[0][0] for p in pubs if p.bursts]
        wake = min([kill_at, *due]) - now
        readable, writable, _ = select.select(
            [sub.sock] + [p.client.sock for p in pubs],
            [p.client.sock for p in pubs if p.out], [], max(wake, 0))
        if sub.sock in readable:
            try:
                chunk = sub.sock.recv(1 << 20)
                assert chunk, "the server closed the subscriber before the kill"
                sub_data += chunk
            except BlockingIOError:
                pass
        for p in pubs:
            if p.client.sock in readable:
                p.read()
            if p.client.sock in writable:
                p.write()
    os.kill(server.proc.pid, signal.SIGKILL)
    assert server.stop() == -signal.SIGKILL
    delivered = [line for line in whole_lines(bytes(sub_data) + read_to_end(sub))
                 if line != OK_LINE]
    acked = [(p.name, fields) for p in pubs for fields in p.acknowledged(read_to_end(p.client))]
    sent = {fields["msg"] for p in pubs for fields in p.sent}
    return acked, delivered, sent


@pytest.mark.parametrize("policy", POLICIES)
def test_random_kills_under_load_lose_nothing_told(tmp_path, policy):
    # a small --compact-min: compactions begin, finish and are cut short
    # by kills all along
    args = ("--data-dir", str(tmp_path), "--fsync", policy, "--compact-min", "256K",
            "--cache-size", "1000000", "--max-memory", "0", "--max-output", "1g")
    rng = random.Random(f"crash-{policy}")
    history = History()
    server = Server(*args)
    try:
        for round in range(ROUNDS):
            try:
                acked, delivered, sent = load_and_kill(server, history, round, rng)
                server = Server(*args)   # raises with its stderr if the files do not load
                check_restart(server, history, round, acked, delivered, sent)
            except (AssertionError, RuntimeError) as e:
                raise AssertionError(f"round {round}: {e}") from e
        # and a clean stop keeps it all
        assert server.stop() == 0, server.stderr()
        server = Server(*args)
        check_restart(server, history, ROUNDS, [], [], set())
        assert server.stop() == 0, server.stderr()
    finally:
        server.stop()
