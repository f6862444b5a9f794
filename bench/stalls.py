"""How long one busy client can make the others wait: a publisher/subscriber
pair exchanges a message every millisecond, and its worst round trip is taken
during each burst of issue 11 (a pipelined fan-out to 1,000 subscribers, 250
connections finishing 1 MiB lines at once, one connection leaving 1,000,000
subscriptions), and in a quiet second for comparison.

    python3 bench/stalls.py MQD_BINARY [EXTRA MQD ARGS...]

It prints a table for docs/BENCHMARKS.md. A benchmark, not a test: nothing
here passes or fails."""
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "protocol"))
import mqd_harness  # noqa: E402
from mqd_harness import Server  # noqa: E402


def line(**fields):
    return (json.dumps(fields) + "\n").encode()


class Pair:
    """Round trips of one message a millisecond, each timed."""

    def __init__(self, server):
        self.pub, self.sub = server.client(), server.client()
        self.sub.cmd(command="subscribe", topic="pair", cache=False)
        self.sub.line()
        self.samples = []   # (sent at, round trip), seconds
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        n = 0
        while not self.stopping.is_set():
            sent = time.monotonic()
            self.pub.cmd(command="send", topic="pair", msg=str(n), delivery="all", cache=False)
            self.pub.line(timeout=60)
            self.sub.line(timeout=60)
            self.samples.append((sent, time.monotonic() - sent))
            n += 1
            time.sleep(0.001)

    def worst(self, start, end):
        during = [rt for at, rt in self.samples if start <= at <= end]
        return max(during) if during else float("nan"), len(during)

    def stop(self):
        self.stopping.set()
        self.thread.join(60)


def quiet(server):
    time.sleep(1.0)


def fan_out(server):
    subs = []
    for _ in range(1000):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(line(command="subscribe", topic="wide", cache=False))
        subs.append(s)
    time.sleep(0.5)   # subscribed
    publisher = server.client()
    burst = b"".join(line(command="send", topic="wide", msg="x" * 8, delivery="all", cache=False)
                     for _ in range(1100))   # about 64 KiB in one write
    start = time.monotonic()
    publisher.send(burst[:65536])
    publisher.send(burst[65536:])
    for _ in range(1100):
        publisher.line(timeout=120)
    return start, subs + [publisher.sock]


def long_lines(server):
    conns = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(250)]
    body = b'{"command":"send","topic":"big","msg":"' + b"y" * (1024 * 1024 - 100) + b'"'
    for c in conns:
        c.sendall(body + b'}')   # all but the newline
    start = time.monotonic()
    for c in conns:
        c.sendall(b"}\n"[1:])
    time.sleep(1.0)
    return start, conns


def many_subscriptions(server):
    c = server.client()
    n = 1000000
    batch = 20000
    for i in range(0, n, batch):
        c.send(b"".join(line(command="subscribe", topic=f"s{k}", cache=False)
                        for k in range(i, i + batch)))
        for _ in range(batch):
            c.line(timeout=120)
    start = time.monotonic()
    c.close()   # the server tears down a million subscriptions
    time.sleep(1.5)
    return start, []


BURSTS = [("quiet (no burst)", quiet, []),
          ("one 64 KiB write of sends to 1,000 subscribers", fan_out, []),
          ("250 connections finishing 1 MiB lines at once", long_lines, []),
          ("one connection leaving 1,000,000 subscriptions", many_subscriptions,
           ["--max-subscriptions", "1000000", "--max-clients", "2000"])]


def main():
    binary, extra = sys.argv[1], sys.argv[2:]
    mqd_harness.BINARY = binary
    print(f"{binary} {' '.join(extra)}")
    print("| burst | the pair's worst round trip, ms | round trips in the window |")
    print("|---|---|---|")
    for title, burst, args in BURSTS:
        server = Server("--max-clients", "2000", "--max-output", "1g", *args, *extra)
        pair = Pair(server)
        time.sleep(0.3)
        began = time.monotonic()
        result = burst(server)
        start, held = result if result else (began, [])
        time.sleep(0.5)
        end = time.monotonic()
        pair.stop()
        worst, count = pair.worst(start if burst is not quiet else began, end)
        for s in held:
            s.close()
        server.stop()
        print(f"| {title} | {worst * 1000:.1f} | {count} |", flush=True)


if __name__ == "__main__":
    main()
