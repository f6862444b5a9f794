"""--data-dir on a disk that fills up, and on a log that cannot be written
(README, Persistence; include/mqd/store.h).

The full disk is real: mqd runs in a mount namespace of its own, with a
1 MiB tmpfs mounted at the data directory's parent, which the test reaches
through /proc/PID/root. The failed write is real too: a low RLIMIT_FSIZE,
raised again from outside with prlimit. Both need root (CI runs as root);
elsewhere the tests say so and skip."""

import ctypes
import os
import resource
import shutil
import socket
import struct
import time

import pytest

from mqd_harness import OK, Server, metric, send, subscribe

CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
NOT_PERSISTED = {"success": False, "reason": "Could not persist"}

needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="mounting a small tmpfs in a namespace needs root")


def small_tmpfs(path, size):
    """A preexec_fn: the child gets a mount namespace of its own, with a
    tmpfs of `size` at `path`."""
    def setup():
        libc = ctypes.CDLL(None, use_errno=True)
        if (libc.unshare(CLONE_NEWNS) != 0
                or libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0
                or libc.mount(b"tmpfs", str(path).encode(), b"tmpfs", 0,
                              f"size={size}".encode()) != 0):
            raise OSError(ctypes.get_errno(), "cannot mount the small tmpfs")
    return setup


def silent(client, seconds):
    """Whether nothing comes to the client for that long."""
    try:
        client.raw_line(timeout=seconds)
    except TimeoutError:
        return True
    return False


def replay_all(client, topic):
    """The raw lines of every cached message of the topic."""
    assert client.request(command="subscribe", topic=topic) == OK
    client.cmd(command="unsubscribe", topic="\x01sync")
    got = []
    while (raw := client.raw_line()) != b'{"success": true}\r\n':
        got.append(raw)
    return got


@needs_root
def test_a_full_disk_refuses_sends_and_recovers(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    server = Server("--data-dir", str(mnt / "data"), "--cache-size", "100000", "--metrics", "0",
                    preexec_fn=small_tmpfs(mnt, "1M"))
    inside = f"/proc/{server.proc.pid}/root{mnt}"
    with open(f"{inside}/filler", "wb") as f:   # room to give back later
        f.write(b"\0" * 300_000)
    watcher = server.client()
    subscribe(watcher, "t")
    c = server.client()
    msg = "x" * 8000
    accepted = 0
    while True:
        reply = c.request(command="send", topic="t", msg=f"{accepted} {msg}", delivery="all")
        if reply != OK:
            break
        accepted += 1
        assert accepted < 200, "the disk never filled"
    assert reply == NOT_PERSISTED
    assert accepted > 10
    # again, as big: still no room (a small one might fit what is left)
    assert c.request(command="send", topic="t", msg=f"again {msg}", delivery="all") == NOT_PERSISTED
    # the watcher got every accepted send and nothing of the refused ones
    got = [watcher.line() for _ in range(accepted)]
    assert [m["index"] for m in got] == list(range(accepted))
    watcher.sync()
    # subscribes and replays go on
    assert len(replay_all(server.client(), "t")) == accepted
    server.wait_for_log("no room for records")
    assert metric(server, 'mqd_protocol_errors_total{reason="not_persisted"}') == 2
    assert metric(server, "mqd_persist_errors_total") >= 1
    assert metric(server, "mqd_persist_records_total") == accepted

    os.unlink(f"{inside}/filler")   # space comes back: so do sends
    send(c, "t", "after")
    assert watcher.line()["index"] == accepted   # no index went to a refused send
    # what was recorded is what was accepted: a copy of the directory loads it
    assert server.proc.poll() is None
    before = replay_all(server.client(), "t")
    shutil.copytree(f"{inside}/data", tmp_path / "copy")
    assert server.stop() == 0

    server = Server("--data-dir", str(tmp_path / "copy"), "--cache-size", "100000")
    assert replay_all(server.client(), "t") == before
    assert len(before) == accepted + 1
    assert server.stop() == 0


@needs_root
def test_a_write_that_fails_holds_every_reply_back_until_it_is_written(tmp_path):
    """Past RLIMIT_FSIZE the log's write fails (EFBIG): the pass's replies and
    deliveries are held, sends are refused, and when the limit is raised the
    records are written and everything held goes out, nothing lost."""
    limit = 64 * 1024

    def low_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    server = Server("--data-dir", str(tmp_path), "--cache-size", "100000",
                    preexec_fn=low_file_size)
    watcher = server.client()
    subscribe(watcher, "t")
    c = server.client()
    msg = "y" * 1000
    sent = 0
    while os.path.getsize(tmp_path / "log.1") + 4000 < limit:
        send(c, "t", f"{sent} {msg}")
        sent += 1
    assert [watcher.line()["index"] for _ in range(sent)] == list(range(sent))
    # one pipelined burst crosses the limit: its replies stay back
    c.send("".join(f'{{"command":"send","topic":"t","msg":"{sent + i} {msg}","delivery":"all"}}\n'
                   for i in range(20)))
    server.wait_for_log("cannot write records")
    assert silent(c, 0.5) and silent(watcher, 0.1)
    other = server.client()
    other.cmd(command="send", topic="t", msg="while failing", delivery="all")
    assert silent(other, 0.3)   # held too: one flush for all

    resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE,
                     (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    replies = [c.line() for _ in range(20)]
    assert replies == [OK] * 20   # accepted before the failure: written, then told
    assert other.line() == NOT_PERSISTED   # refused while it failed
    got = [watcher.line()["index"] for _ in range(20)]
    assert got == list(range(sent, sent + 20))
    server.wait_for_log("records written again")
    send(c, "t", "after")
    assert watcher.line()["index"] == sent + 20
    assert server.stop() == 0

    server = Server("--data-dir", str(tmp_path), "--cache-size", "100000")
    assert len(replay_all(server.client(), "t")) == sent + 21
    assert server.stop() == 0


def low_file_size(limit):
    """A preexec_fn: RLIMIT_FSIZE of `limit` bytes, which prlimit may raise."""
    def setup():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    return setup


def fail_writes(server, data_dir, c, limit):
    """Sends until the log's write fails at `limit`: the sends acknowledged
    before it, and the 20 of the burst whose replies are held."""
    sent = 0
    while os.path.getsize(f"{data_dir}/log.1") + 4000 < limit:
        send(c, "t", f"{sent} " + "y" * 1000)
        sent += 1
    c.send("".join(f'{{"command":"send","topic":"t","msg":"{sent + i} {"y" * 1000}",'
                   f'"delivery":"all"}}\n' for i in range(20)))
    server.wait_for_log("cannot write records")
    assert silent(c, 0.3)
    return sent


@needs_root
def test_a_stop_while_writes_fail_tells_nothing_unrecorded(tmp_path):
    """SIGTERM while the log cannot be written: the held replies are not
    sent on the way out, since their records never reached the log, and a
    restart gives their indexes to new sends without anyone having heard
    of the old ones."""
    server = Server("--data-dir", str(tmp_path), "--cache-size", "100000",
                    preexec_fn=low_file_size(64 * 1024))
    watcher = server.client()
    subscribe(watcher, "t")
    c = server.client()
    sent = fail_writes(server, str(tmp_path), c, 64 * 1024)
    assert server.stop() == 0
    assert c.drain() == 0   # not one byte more: no reply of the held burst
    assert len([watcher.line() for _ in range(sent)]) == sent
    assert watcher.drain() == 0

    server = Server("--data-dir", str(tmp_path), "--cache-size", "100000")
    assert len(replay_all(server.client(), "t")) == sent
    r = server.client()
    subscribe(r, "t", cache=False)
    send(server.client(), "t", "next")
    assert r.line()["index"] == sent
    assert server.stop() == 0


@needs_root
def test_a_client_that_resets_while_writes_fail_does_not_spin_the_loop(tmp_path):
    """While the log cannot be written, the loop tries again every 100 ms,
    whatever clients do: one that resets its connection (its socket then
    reports an error at every wait) is let go at once."""
    server = Server("--data-dir", str(tmp_path), "--cache-size", "100000", "--metrics", "0",
                    preexec_fn=low_file_size(64 * 1024))
    c = server.client()
    fail_writes(server, str(tmp_path), c, 64 * 1024)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()   # a reset, with replies held for it
    before = metric(server, "mqd_persist_errors_total")
    time.sleep(1.0)
    tries = metric(server, "mqd_persist_errors_total") - before
    assert 5 <= tries <= 20   # about 10: one try per 100 ms, not one per wake-up
    assert server.stop() == 0

