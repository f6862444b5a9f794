"""Soak: a mixed load against one mqd for a long time, sampling its RSS and
open descriptors every second. After the warm-up, the RSS must stay flat.

    bench/soak.sh [--duration SEC] [--warmup SEC] [--csv FILE]
    python3 bench/soak.py MQD MQD_BENCH [--duration SEC] [--warmup SEC] [--csv FILE]

The load, all at once, for the whole run:
- fan-out: mqd-bench rounds of 100 subscribers on one topic, 1 publisher,
  paced at 20,000 msg/s, so 2 M deliveries/s (each round reconnects);
- many topics: mqd-bench rounds of 1,000 topics with one subscriber each,
  10 publishers, 10,000 msg/s;
- slow consumers: about every 1.5 s, 5 clients subscribe to a topic and never
  read while 8 MiB are published to it, until --max-output (1 MiB here) cuts
  them;
- reconnect storms: every second, 200 clients connect, subscribe to one of
  100 storm topics, send a cached message, and leave, half with a reset.
mqd-bench checks every delivery of its rounds (no loss, no duplicate).

Prints the RSS at the end of the warm-up, its range after it, the growth per
minute from a least-squares fit, the descriptor range, and the RSS per minute
as a table for docs/HARDENING.md. Exit status 1 when a round lost or
duplicated a message, the server did not exit 0, or it died."""
import argparse
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

CHURN_TOPICS = 100  # their caches fill within the warm-up


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(binary, port, log):
    argv = [binary, "--port", str(port), "--max-output", "1m", "--max-clients", "20000",
            "--log-level", "warn"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=log)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mqd did not start")
            time.sleep(0.01)


def sample(pid):
    """(RSS in KiB, open descriptors) of the server."""
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


class Load:
    """The load's threads, and what they saw."""

    def __init__(self, bench, port, until):
        self.bench, self.port, self.until = bench, port, until
        self.rounds = []        # mqd-bench results
        self.failures = []      # what went wrong
        self.slow_cut = 0       # slow consumers the server cut off
        self.storm_clients = 0

    def bench_rounds(self, args):
        while time.monotonic() < self.until - 12:
            argv = [self.bench, "--port", str(self.port), "--json", "--duration", "8",
                    "--warmup", "1"] + args
            out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
            if out.returncode != 0:
                self.failures.append(f"mqd-bench {' '.join(args)}: {out.stderr.strip()}")
                continue
            result = json.loads(out.stdout)
            self.rounds.append(result)
            if result.get("lost") or result.get("duplicated"):
                self.failures.append(f"mqd-bench {' '.join(args)}: {out.stdout.strip()}")

    def slow_consumers(self):
        subscribe = b'{"command":"subscribe","topic":"slow","cache":false}\n'
        big = b'{"command":"send","topic":"slow","msg":"%s","delivery":"all","cache":false}\n' % (
            b"w" * (512 << 10))
        publisher = socket.create_connection(("127.0.0.1", self.port))
        publisher.settimeout(30)
        while time.monotonic() < self.until - 5:
            stalled = []
            for _ in range(5):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before the window is set
                s.connect(("127.0.0.1", self.port))
                s.sendall(subscribe)
                stalled.append(s)
            time.sleep(0.2)   # their subscribes are in
            # 8 MiB each: past any socket buffer and the 1 MiB --max-output
            publisher.sendall(big * 16)
            replies = b""
            while replies.count(b"\n") < 16:
                replies += publisher.recv(4096)
            for s in stalled:
                self.slow_cut += self.was_cut(s)
                s.close()
            time.sleep(1)
        publisher.close()

    @staticmethod
    def was_cut(sock):
        """Whether the server closed the connection (it reads what is left)."""
        sock.settimeout(1)
        deadline = time.monotonic() + 5
        try:
            while sock.recv(1 << 20):
                if time.monotonic() > deadline:
                    return False
            return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def storms(self):
        rng = random.Random(1)
        while time.monotonic() < self.until - 3:
            began = time.monotonic()
            socks = []
            for i in range(200):
                topic = "storm-%d" % rng.randrange(CHURN_TOPICS)
                s = socket.create_connection(("127.0.0.1", self.port))
                s.sendall(b'{"command":"subscribe","topic":"%s","last_seen":%d}\n'
                          b'{"command":"send","topic":"%s","msg":"%s","delivery":"%s"}\n'
                          % (topic.encode(), rng.randrange(-1, 200), topic.encode(),
                             b"s" * rng.randrange(200), rng.choice([b"all", b"one"])))
                if i % 2:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                socks.append(s)
            for s in socks:
                s.close()
            self.storm_clients += len(socks)
            time.sleep(max(0.0, 1 - (time.monotonic() - began)))

    def start(self):
        jobs = [(self.bench_rounds, (["--prefix", "fan", "--subscribers", "100", "--topics",
                                      "1", "--publishers", "1", "--rate", "20000"],)),
                (self.bench_rounds, (["--prefix", "many", "--subscribers", "1000", "--topics",
                                      "1000", "--publishers", "10", "--rate", "10000"],)),
                (self.slow_consumers, ()), (self.storms, ())]
        self.threads = [threading.Thread(target=f, args=a, daemon=True) for f, a in jobs]
        for t in self.threads:
            t.start()

    def join(self):
        for t in self.threads:
            t.join(180)


def slope_per_minute(points):
    """Least-squares growth of the second coordinate per 60 of the first."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return 60 * sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


def report(samples, warmup, load, status):
    after = [(t, rss, fds) for t, rss, fds in samples if t >= warmup]
    rss_after = [rss for _, rss, _ in after]
    fds = [f for _, _, f in samples]
    at_warmup = after[0][1] if after else 0
    growth = slope_per_minute([(t, rss) for t, rss, _ in after])
    delivered = sum(r.get("delivered", 0) for r in load.rounds)
    print(f"soak: {samples[-1][0]:.0f} s, warm-up {warmup} s")
    print(f"  RSS at the end of the warm-up {at_warmup} KiB; after it "
          f"{min(rss_after)}..{max(rss_after)} KiB, last {rss_after[-1]} KiB, "
          f"fitted growth {growth:+.1f} KiB/min")
    print(f"  descriptors {min(fds)}..{max(fds)}, last {fds[-1]}")
    print(f"  load: {len(load.rounds)} mqd-bench rounds, {delivered} messages checked, "
          f"{load.storm_clients} storm clients, {load.slow_cut} slow consumers cut")
    print(f"  server exit status {status}; failures: {len(load.failures)}")
    for f in load.failures[:10]:
        print("   ", f)
    print("\n| minute | RSS KiB (min..max) | descriptors (max) |\n|---|---|---|")
    minutes = {}
    for t, rss, f in samples:
        minutes.setdefault(int(t // 60), []).append((rss, f))
    for m, values in sorted(minutes.items()):
        print(f"| {m} | {min(v[0] for v in values)}..{max(v[0] for v in values)} "
              f"| {max(v[1] for v in values)} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mqd")
    ap.add_argument("bench")
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--warmup", type=float, default=60)
    ap.add_argument("--csv", help="write every sample: seconds,rss_kib,fds")
    args = ap.parse_args()
    if args.warmup >= args.duration:
        ap.error("--warmup must be shorter than --duration")

    port = free_port()
    log = tempfile.TemporaryFile()
    proc = start_server(args.mqd, port, log)
    began = time.monotonic()
    load = Load(args.bench, port, began + args.duration)
    samples = []
    status = None
    try:
        load.start()
        while time.monotonic() < began + args.duration:
            if proc.poll() is not None:
                load.failures.append(f"mqd died with status {proc.returncode}")
                break
            rss, fds = sample(proc.pid)
            samples.append((time.monotonic() - began, rss, fds))
            time.sleep(1)
        load.join()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        status = proc.wait(30)
    if args.csv:
        with open(args.csv, "w") as f:
            f.write("seconds,rss_kib,fds\n")
            f.writelines(f"{t:.1f},{rss},{fds}\n" for t, rss, fds in samples)
    report(samples, args.warmup, load, status)
    if status != 0:
        log.seek(0)
        sys.stderr.write(log.read().decode(errors="replace")[-2000:])
    return 1 if load.failures or status != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
