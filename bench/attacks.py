"""Measures mqd's memory under the hostile clients of tests/protocol/test_memory.py:
the peak RSS during each attack, the RSS once the attacker has gone, and
whether a well-behaved publisher/subscriber pair beside it kept going.

    python3 bench/attacks.py MQD_BINARY [EXTRA MQD ARGS...]

e.g. `bench/attacks.py build/mqd --max-memory 64m` against the budget, or an
older binary with no arguments for the figures before it. The tests assert
the bounds; this prints the figures for docs and notes."""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "protocol"))
import mqd_harness  # noqa: E402
from mqd_harness import Server  # noqa: E402

MiB = 1 << 20


def line(**fields):
    import json
    return (json.dumps(fields) + "\n").encode()


def pipelined(client, lines, batch=500):
    for i in range(0, len(lines), batch):
        chunk = lines[i:i + batch]
        try:
            client.send(b"".join(chunk))
            for _ in chunk:
                if not client.raw_line():
                    return
        except OSError:
            return


def many_topics(server):
    c = server.client()
    pipelined(c, [line(command="send", topic=f"t{i}", msg="x" * 1024, delivery="all")
                  for i in range(100000)])
    return [c]


def big_cached(server):
    c = server.client()
    pipelined(c, [line(command="send", topic=f"b{i % 1000}", msg="y" * 102400, delivery="all")
                  for i in range(1500)], batch=50)
    return [c]


def long_names(server):
    c = server.client()
    name = "n" * (MiB - 200)
    pipelined(c, [line(command="send", topic=name + str(i), msg="", delivery="all", cache=False)
                  for i in range(100)], batch=5)
    return [c]


def unfinished_lines(server):
    cs = [server.client() for _ in range(100)]
    for c in cs:
        try:
            c.send(b"{" + b"z" * (MiB - 2))
        except OSError:
            pass
    time.sleep(0.5)
    return cs


def never_read(server):
    subs = []
    for i in range(30):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", server.port))
        s.sendall(line(command="subscribe", topic=f"s{i}"))
        subs.append(s)
    p = server.client()
    pipelined(p, [line(command="send", topic=f"s{i % 30}", msg="w" * 102400, delivery="all",
                       cache=False) for i in range(3000)], batch=60)
    return subs + [p]


def subscriptions(server):
    c = server.client()
    pipelined(c, [line(command="subscribe", topic=f"x{i}", cache=False)
                   for i in range(1000000)], batch=5000)
    return [c]


ATTACKS = [("100,000 new topics, one 1 KiB message each", many_topics),
           ("1,000 topics, 1,500 cached 100 KiB messages", big_cached),
           ("100 topics with 1 MiB names, cache-size 0, cache false", long_names),
           ("100 connections, an unfinished 1 MiB line each", unfinished_lines),
           ("30 subscribers never reading, 300 MB published", never_read),
           ("one connection, 1,000,000 subscriptions", subscriptions)]


def pair_works(server, stop, result):
    p, s = server.client(), server.client()
    s.cmd(command="subscribe", topic="pair")
    s.line()
    n = 0
    try:
        while not stop.is_set():
            p.cmd(command="send", topic="pair", msg=str(n), delivery="all", cache=False)
            reply = p.line()
            got = s.line()
            if reply != mqd_harness.OK or got.get("index") != n:
                result.append(f"pair broken at {n}: {reply} {got}")
                return
            n += 1
            time.sleep(0.005)
        result.append(f"pair exchanged {n}, none lost")
    except Exception as e:
        result.append(f"pair broken at {n}: {e!r}")


def measure(binary, extra, title, attack):
    mqd_harness.BINARY = binary
    args = list(extra) + (["--cache-size", "0"] if attack is long_names else [])
    server = Server(*args)
    base = server.rss_kib()
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], server.rss_kib())
            except OSError:
                return
            time.sleep(0.01)
    pair = []
    threads = [threading.Thread(target=sample), threading.Thread(target=pair_works,
                                                                 args=(server, stop, pair))]
    for t in threads:
        t.start()
    start = time.monotonic()
    clients = attack(server)
    took = time.monotonic() - start
    for c in clients:
        c.close()
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join()
    after = server.rss_kib()
    alive = server.proc.poll() is None
    server.stop()
    print(f"| {title} | {base / 1024:.0f} | {peak[0] / 1024:.0f} | {after / 1024:.0f} | "
          f"{took:.1f} | {'up' if alive else 'DIED'}; {pair[0] if pair else '?'} |", flush=True)


def main():
    binary, extra = sys.argv[1], sys.argv[2:]
    print(f"{binary} {' '.join(extra)}")
    print("| attack | RSS at start, MiB | peak RSS, MiB | RSS 1 s after it left, MiB | "
          "attack took, s | server; pair |")
    print("|---|---|---|---|---|---|")
    for title, attack in ATTACKS:
        measure(binary, extra, title, attack)


if __name__ == "__main__":
    main()
