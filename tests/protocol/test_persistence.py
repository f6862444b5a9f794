"""--data-dir: every topic's next index and cache survive a restart and a
crash (docs/PROTOCOL.md, Persistence; include/mqd/store.h).

Each test makes its own data directory under pytest's tmp_path."""

import os
import random
import signal

import pytest

from mqd_harness import OK, Server, run_mqd, send, subscribe

POLICIES = ["always", "everysec", "no"]


def start(data_dir, *args):
    return Server("--data-dir", str(data_dir), *args)


def raw_replay(client, topic, n, **extra):
    """The raw bytes of the n lines a subscribe replays."""
    assert client.request(command="subscribe", topic=topic, **extra) == OK
    return [client.raw_line() for _ in range(n)]


def test_a_restart_keeps_indexes_and_caches_byte_exact(tmp_path):
    server = start(tmp_path, "--cache-size", "5")
    c = server.client()
    # every escape, a non-BMP character, \u0000 in msg: delivered as sent
    msgs = ["plain", "tab\there", "\u0000 nul", "\U0001F600 smile", "\"q\" \\ /"]
    for i in range(8):   # a cache of 5 keeps the last five
        send(c, "t", msgs[i % 5])
    before = raw_replay(server.client(), "t", 5)
    send(c, "quiet", "x", cache=False)   # no cache: its index only
    send(c, "quiet", "y", cache=False)
    assert server.stop() == 0

    server = start(tmp_path, "--cache-size", "5")
    after = raw_replay(server.client(), "t", 5)
    assert after == before
    c = server.client()
    assert c.request(command="send", topic="t", msg="next", delivery="all")["success"]
    r = server.client()
    subscribe(r, "quiet")
    send(c, "quiet", "z", cache=False)
    assert r.line()["index"] == 2   # 0 and 1 were used before the restart
    w = server.client()
    subscribe(w, "t", last_seen=7)
    assert w.line()["index"] == 8
    assert server.stop() == 0


def test_one_messages_taken_before_a_restart_stay_taken(tmp_path):
    server = start(tmp_path)
    c = server.client()
    for i in range(4):
        send(c, "jobs", f"job {i}", delivery="one")   # nobody there: cached
    worker = server.client()
    assert worker.request(command="subscribe", topic="jobs", last_seen=1) == OK
    assert [worker.line()["msg"] for _ in range(2)] == ["job 2", "job 3"]
    assert server.stop() == 0

    server = start(tmp_path)
    again = server.client()
    subscribe(again, "jobs")
    assert [again.line()["msg"] for _ in range(2)] == ["job 0", "job 1"]
    again.sync()   # 2 and 3 were taken: not replayed
    late = server.client()
    subscribe(late, "jobs")
    late.sync()    # and 0 and 1 are taken now
    assert server.stop() == 0


def replay_all(client, topic):
    """Every cached message of the topic, replayed, until a sync's reply."""
    assert client.request(command="subscribe", topic=topic) == OK
    client.cmd(command="unsubscribe", topic="\x01sync")
    got = []
    while (line := client.line()) != OK:
        got.append(line)
    return got


@pytest.mark.parametrize("policy", POLICIES)
def test_a_crash_loses_nothing_a_client_was_told(tmp_path, policy):
    """SIGKILL at a random moment of 1,000 pipelined sends, ten times on the
    same directory: every send whose reply came back is there after the
    restart with its index and bytes, what came before stays, and the next
    index is never one used."""
    rng = random.Random(policy)
    kept = {}   # topic: messages found after its restart, the probe included
    for round in range(10):
        args = ("--cache-size", "100000", "--fsync", policy)
        server = start(tmp_path, *args)
        topic = f"crash{round}"
        c = server.client()
        c.send("".join(f'{{"command":"send","topic":"{topic}","msg":"m{i}","delivery":"all"}}\n'
                       for i in range(1000)))
        replied = rng.randrange(1, 1000)
        for _ in range(replied):
            assert c.line() == OK
        os.kill(server.proc.pid, signal.SIGKILL)
        server.stop()

        server = start(tmp_path, *args)
        got = replay_all(server.client(), topic)
        assert len(got) >= replied
        assert [(m["index"], m["msg"]) for m in got] == [(i, f"m{i}") for i in range(len(got))]
        r = server.client()
        subscribe(r, topic, cache=False)
        send(server.client(), topic, "probe")
        assert r.line()["index"] == len(got)   # never an index used before
        kept[topic] = len(got) + 1
        for earlier, n in kept.items():
            assert len(replay_all(server.client(), earlier)) == n
        assert server.stop() == 0


def test_a_bigger_cache_after_a_restart_brings_nothing_back(tmp_path):
    server = start(tmp_path, "--cache-size", "2")
    c = server.client()
    for i in range(5):
        send(c, "t", f"m{i}")   # the cache keeps 3 and 4
    assert server.stop() == 0
    server = start(tmp_path, "--cache-size", "10")
    got = replay_all(server.client(), "t")
    assert [m["index"] for m in got] == [3, 4]
    assert server.stop() == 0
    server = start(tmp_path, "--cache-size", "1")   # and a smaller one keeps the newest
    assert [m["index"] for m in replay_all(server.client(), "t")] == [4]
    assert server.stop() == 0
    # what the smaller cache dropped at start is gone, as a drop in memory is
    server = start(tmp_path, "--cache-size", "10")
    assert [m["index"] for m in replay_all(server.client(), "t")] == [4]
    assert server.stop() == 0


def test_one_lines_never_written_at_shutdown_go_back_to_the_cache(tmp_path):
    """A worker behind a backlog takes 300 cached "one" messages in a replay,
    none written yet, when mqd is stopped: they are handed back to the cache
    and kept, so nobody loses them."""
    server = start(tmp_path, "--max-output", "256m", "--cache-size", "1000")
    pub = server.client()
    for i in range(300):
        pub.cmd(command="send", topic="work", msg=f"job {i}", delivery="one")
    for _ in range(300):
        assert pub.line() == OK
    worker = server.client()
    subscribe(worker, "flood", cache=False)
    chunk = "z" * (256 * 1024)
    for _ in range(64):   # 16 MiB: more than its socket takes
        pub.cmd(command="send", topic="flood", msg=chunk, delivery="all", cache=False)
    for _ in range(64):
        assert pub.line() == OK
    worker.cmd(command="subscribe", topic="work")   # the replay queues behind the flood
    pub.sync()
    assert server.stop() == 0
    worker.close()
    server = start(tmp_path, "--cache-size", "1000")
    got = replay_all(server.client(), "work")
    assert [m["msg"] for m in got] == [f"job {i}" for i in range(300)]
    assert server.stop() == 0


def test_a_second_mqd_on_the_same_directory_is_refused(tmp_path):
    server = start(tmp_path)
    status, out, err = run_mqd("--port", "0", "--data-dir", str(tmp_path))
    assert status == 1
    assert err.strip().count("\n") == 0
    assert "in use by another mqd" in err
    assert server.stop() == 0


def test_a_directory_that_cannot_be_made_refuses_the_start(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    status, _, err = run_mqd("--port", "0", "--data-dir", str(blocker / "sub"))
    assert status == 1
    assert "cannot make data directory" in err and err.strip().count("\n") == 0


def test_a_torn_tail_is_cut_with_a_warning(tmp_path):
    server = start(tmp_path)
    c = server.client()
    send(c, "t", "kept")
    assert server.stop() == 0
    with open(tmp_path / "log.1", "ab") as f:
        f.write(b"\x40\x00\x00\x00 a record cut short")   # as a crash mid-write leaves it
    server = start(tmp_path)
    assert "cut a torn tail of 23 bytes" in server.stderr()
    r = server.client()
    subscribe(r, "t")
    assert r.line()["msg"] == "kept"
    send(c := server.client(), "t", "more")
    assert r.line()["index"] == 1
    assert server.stop() == 0
    server = start(tmp_path)   # and the log is good again
    assert "cut a torn tail" not in server.stderr()
    assert server.stop() == 0


def test_damage_before_the_tail_refuses_the_start(tmp_path):
    server = start(tmp_path)
    c = server.client()
    for i in range(3):
        send(c, "t", f"m{i}")
    assert server.stop() == 0
    log = tmp_path / "log.1"
    data = bytearray(log.read_bytes())
    data[30] ^= 0x01   # inside the first record
    log.write_bytes(bytes(data))
    status, _, err = run_mqd("--port", "0", "--data-dir", str(tmp_path))
    assert status == 1
    assert "damaged at offset 12" in err and err.strip().count("\n") == 0


def test_an_unknown_fsync_policy_is_refused():
    status, _, err = run_mqd("--fsync", "sometimes")
    assert status == 2
    assert "--fsync" in err


def generations(data_dir):
    """{"log": [N...], "snapshot": [N...], "tmp": [names]} in the directory."""
    found = {"log": [], "snapshot": [], "tmp": []}
    for name in os.listdir(data_dir):
        if name.endswith(".tmp"):
            found["tmp"].append(name)
        elif "." in name:
            kind, n = name.split(".", 1)
            found[kind].append(int(n))
    return {k: sorted(v) for k, v in found.items()}


def live_state(server, topics, retired):
    """What a client can see of the state: each topic's replay (raw bytes),
    then each retired topic's next index, found by a probe send (which is
    part of the state from then on)."""
    state = {}
    for topic in topics:
        c = server.client()
        c.cmd(command="subscribe", topic=topic)
        lines = []
        c.cmd(command="unsubscribe", topic="\x01sync")
        assert c.line() == OK
        while (raw := c.raw_line()) != b'{"success": true}\r\n':
            lines.append(raw)
        state[topic] = lines
    for topic in retired:
        r, p = server.client(), server.client()
        subscribe(r, topic, cache=False)
        send(p, topic, "probe", cache=False)
        state[topic] = r.line()["index"]
    return state


def test_compaction_keeps_exactly_the_live_state(tmp_path):
    """Past --compact-min, the logs are compacted into a snapshot in a child
    process while sends go on; the files then hold the live state alone, and
    a restart brings back exactly what a client saw before it."""
    args = ("--cache-size", "5", "--compact-min", "16K")
    server = start(tmp_path, *args)
    c = server.client()
    topics = [f"t{i}" for i in range(6)]
    retired = [f"gone{i}" for i in range(40)]
    for i in range(600):   # about 60 KiB of records: several compactions
        send(c, topics[i % 6], f"m{i} " + "x" * 60, delivery="one" if i % 5 == 0 else "all")
        if i % 15 == 0:
            send(c, retired[i // 15], f"r{i}", cache=False)
    taker = server.client()   # takes the "one" messages of t0 out of its cache
    assert any(m["delivery"] == "one" for m in replay_all(taker, "t0"))
    assert taker.request(command="unsubscribe", topic="t0") == OK
    server.wait_until(lambda: "compacted into snapshot" in server.stderr(), "a compaction")
    # one more after every retired topic went, so that the snapshot keeps
    # them by hash alone, then a few sends into the log after it
    done = server.stderr().count("compacted into snapshot")
    for i in range(300):
        send(c, topics[i % 6], f"late{i} " + "x" * 60)
    server.wait_until(lambda: server.stderr().count("compacted into snapshot") > done,
                      "another compaction")
    for i in range(12):
        send(c, topics[i % 6], f"last{i}")
    files = generations(tmp_path)   # the older generations went
    assert len(files["snapshot"]) == 1 and files["log"][0] == files["snapshot"][0]
    # the live state: 6 caches of 5 records of about 155 bytes, 40 retired
    # topics of 29: about 6 KB, where about 140 KB were written
    assert os.path.getsize(tmp_path / f"snapshot.{files['snapshot'][0]}") < 8_000
    probed = retired[:20]   # the rest are only looked at after the restart
    before = live_state(server, topics, probed)
    assert server.stop() == 0
    assert len(generations(tmp_path)["snapshot"]) == 1

    server = start(tmp_path, *args)
    after = live_state(server, topics, retired)
    assert {t: after[t] for t in topics} == {t: before[t] for t in topics}
    # the first look's probes were kept too: each probed topic moved on by one
    assert {t: after[t] for t in probed} == {t: 2 for t in probed}
    assert all(before[t] == 1 for t in probed)
    # and the others, kept in the snapshot by their names' hashes alone
    assert {t: after[t] for t in retired[20:]} == {t: 1 for t in retired[20:]}
    assert server.stop() == 0


def test_a_compaction_cut_short_loses_nothing(tmp_path):
    """A crash while the child writes its snapshot: the unfinished snapshot
    is removed at start, and the logs it would have replaced still hold
    everything."""
    args = ("--cache-size", "1000", "--compact-min", "8K")
    server = start(tmp_path, *args)
    c = server.client()
    for i in range(200):
        send(c, "t", f"m{i} " + "x" * 80)
    server.wait_until(lambda: "compacting into snapshot" in server.stderr(), "a compaction")
    os.kill(server.proc.pid, signal.SIGKILL)   # the child dies with it
    server.stop()
    (tmp_path / "snapshot.99.tmp").write_bytes(b"mqd-log\n half a snapshot")
    server = start(tmp_path, *args)
    assert "snapshot.99.tmp" not in os.listdir(tmp_path)
    got = replay_all(server.client(), "t")
    assert [m["msg"] for m in got] == [f"m{i} " + "x" * 80 for i in range(200)]
    assert server.stop() == 0


def test_check_data_prints_the_state_and_finds_damage(tmp_path):
    server = start(tmp_path, "--cache-size", "3")
    c = server.client()
    for i in range(5):
        send(c, "news", f"n{i}")
    send(c, "jobs", "j0", delivery="one")
    send(c, "quiet", "q", cache=False)
    assert server.stop() == 0
    status, out, _ = run_mqd("--check-data", str(tmp_path))
    assert status == 0, out
    assert "topic jobs: next index 1, 1 cached (1 delivery one)" in out
    assert "topic news: next index 5, 3 cached (0 delivery one)" in out
    assert "3 topics named; 1 retired" in out   # quiet: no cache, nothing subscribed
    assert "topic quiet: next index 1, 0 cached (0 delivery one)" in out
    assert out.rstrip().endswith("ok")

    with open(tmp_path / "log.1", "ab") as f:
        f.write(b"\x40\x00\x00")   # a torn tail: reported, and mqd would cut it
    status, out, _ = run_mqd("--check-data", str(tmp_path))
    assert status == 1 and "torn tail at offset" in out

    log = tmp_path / "log.1"
    data = bytearray(log.read_bytes())
    data[30] ^= 0x01
    log.write_bytes(bytes(data))
    status, out, _ = run_mqd("--check-data", str(tmp_path))
    assert status == 2 and "DAMAGED at offset 12" in out
    assert "mqd will not start on it" in out
    status, out, _ = run_mqd("--check-data", str(tmp_path / "nowhere"))
    assert status == 2 and "cannot open" in out


def test_max_memory_evicts_from_the_restored_state_as_in_memory(tmp_path):
    """A state restored under a smaller --max-memory than it was made with:
    the first command that needs room evicts the oldest cached messages, as
    it would in memory, and the eviction is kept like any other."""
    server = start(tmp_path, "--cache-size", "100000", "--max-memory", "0")
    c = server.client()
    for i in range(800):   # about 8 MiB cached
        send(c, f"t{i % 4}", f"{i:04d} " + "x" * 10_000)
    assert server.stop() == 0

    server = start(tmp_path, "--cache-size", "100000", "--max-memory", "4m")
    c = server.client()
    send(c, "fresh", "y" * 10_000)   # needs room: the oldest go
    kept = [m["msg"][:4] for t in range(4) for m in replay_all(server.client(), f"t{t}")]
    assert 0 < len(kept) < 800
    assert sorted(kept)[0] > "0000"   # the oldest went first
    newest = {f"{i:04d}" for i in range(800 - len(kept), 800)}
    assert set(kept) == newest
    assert server.stop() == 0

    server = start(tmp_path, "--cache-size", "100000", "--max-memory", "0")
    again = [m["msg"][:4] for t in range(4) for m in replay_all(server.client(), f"t{t}")]
    assert sorted(again) == sorted(kept)   # what was evicted stays gone
    assert server.stop() == 0


def test_evictions_at_the_memory_limit_are_kept(tmp_path):
    """At --max-memory, sends evict the oldest cached messages to make room;
    those evictions are recorded like any change, so a restart without the
    limit brings none of them back."""
    server = start(tmp_path, "--cache-size", "100000", "--max-memory", "4m")
    c = server.client()
    for i in range(800):   # about 8 MiB sent into 4 MiB
        send(c, f"t{i % 4}", f"{i:04d} " + "x" * 10_000)
    kept = sorted(m["msg"][:4] for t in range(4) for m in replay_all(server.client(), f"t{t}"))
    assert 0 < len(kept) < 800
    assert server.stop() == 0
    assert "a change is not kept" not in server.stderr()
    server = start(tmp_path, "--cache-size", "100000", "--max-memory", "0")
    again = sorted(m["msg"][:4] for t in range(4) for m in replay_all(server.client(), f"t{t}"))
    assert again == kept
    assert server.stop() == 0
