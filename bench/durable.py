"""Durable mqd beside durable Redis: scenarios A, B and C with --data-dir under
each --fsync policy, Redis with the AOF under the same appendfsync, and mqd in
memory, interleaved in one run (issue 12's targets).

    python3 bench/durable.py [--reps N] [--seconds S] [--scenarios ABC]
                             [--maxlen N] [--dir DIR] [--mqd PATH]
    python3 bench/durable.py --startup GIB [--reps N] [--dir DIR] [--mqd PATH]

Redis's side is Redis Streams (mqd-bench --proto redis-streams: XADD, and
XREAD BLOCK from the last id), not pub/sub: PUBLISH is never written to the
AOF, so pub/sub with appendonly yes would persist nothing. Streams keep each
msg and replay it, as mqd's cache does. XADD trims with MAXLEN ~ --maxlen:
the stream is Redis's delivery path as well as its cache, so it must hold
what a subscriber may fall behind by (one that falls further misses
entries, and the cell fails as lost), where mqd delivers from its queues
and its cache of 100 is only for replay.

Every cell runs as bench/run.py runs it (a fresh server on a free loopback
port, pinned to CPU 0, the generator on CPU 1), in a fresh data directory
under --dir (default the temp directory, /tmp) removed after it. Per
repetition and scenario the order is: mqd in memory, then per policy mqd
and Redis. It prints every run, then a markdown table of medians with
mqd/Redis per policy and each policy against mqd in memory. It writes
nothing else: the history in docs/BENCHMARKS.md is written by hand from it.

--startup GIB fills a data directory with about GIB GiB of cached 1 KiB
messages over 1,000 topics, stops mqd with SIGTERM, then times mqd from
spawn until it answers a command on that directory, --reps times each with
the log dropped from the page cache first (cold) and kept (warm)."""
import argparse
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time

import run

POLICIES = ("always", "everysec", "no")
# (server, fsync policy or None for mqd in memory), in the order they run
CONFIGS = [("mqd", None)] + [(server, p) for p in POLICIES for server in ("mqd", "redis")]
STARTUP_TOPICS = 1000
STARTUP_SIZE = 1024
# a cached 1 KiB msg in the log: the record's frame and head, the topic, and
# the line as delivered, {"command": "send", ..., "index": N}
STARTUP_RECORD = STARTUP_SIZE + 100
PROBE = b'{"command":"unsubscribe","topic":"startup-probe"}\n'  # changes nothing


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f))
               for d, _, files in os.walk(path) for f in files)


def filesystem(path):
    """The type and device of the mount holding `path`: fsync on tmpfs is free."""
    best = ("", "?", "?")
    path = os.path.realpath(path)
    for line in open("/proc/mounts"):
        dev, mount, kind = line.split()[:3]
        if (path == mount or path.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best[0]):
            best = (mount, kind, dev)
    return f"{best[1]} ({best[2]})"


def run_config(server, policy, scenario, args):
    """One cell: `server` with `policy` (None: mqd in memory)."""
    if policy is None:
        return run.run_cell("mqd", scenario, args.seconds)
    data = tempfile.mkdtemp(prefix=f"durable-{server}-{policy}-", dir=args.dir)
    try:
        if server == "mqd":
            r = run.run_cell("mqd", scenario, args.seconds,
                             extra=["--data-dir", data, "--fsync", policy])
        else:
            r = run.run_cell("redis", scenario, args.seconds, proto="redis-streams",
                             extra=["--appendonly", "yes", "--appendfsync", policy,
                                    "--dir", data],
                             bench_extra=["--maxlen", str(args.maxlen)])
        # after the server's exit: what it kept on disk, and proof it kept something
        r["disk_bytes"] = dir_bytes(data)
        if r["disk_bytes"] == 0:
            raise RuntimeError(f"{server} {policy} {scenario}: nothing written to {data}")
        return r
    finally:
        shutil.rmtree(data, ignore_errors=True)


def label(server, policy):
    return "mqd in memory" if policy is None else f"{server} {policy}"


def compare_rows(results, scenarios):
    """The table: per figure and policy, mqd, Redis, mqd/Redis and mqd/(mqd in memory)."""
    rows = ["| scenario | figure | policy | mqd | Redis Streams + AOF | mqd/Redis | "
            "mqd/(mqd in memory) |",
            "|---|---|---|---|---|---|---|"]
    misses = []
    for scenario in scenarios:
        for key, name, higher in run.SCENARIOS[scenario][2]:
            memory, memory_txt = run.cell([r[key] for r in results[(scenario, "mqd", None)]])
            rows.append(f"| {scenario} | {name} | in memory | {memory_txt} | – | – | 1 |")
            for policy in POLICIES:
                m, m_txt = run.cell([r[key] for r in results[(scenario, "mqd", policy)]])
                o, o_txt = run.cell([r[key] for r in results[(scenario, "redis", policy)]])
                rows.append(f"| {scenario} | {name} | {policy} | {m_txt} | {o_txt} | "
                            f"{run.ratio(m, o)} | {run.ratio(m, memory)} |")
                # the targets: at least Redis's figure, and everysec within 15%
                if (m < o) if higher else (m > o):
                    misses.append(f"{scenario} {name} {policy}: mqd behind Redis")
                if policy == "everysec" and memory and \
                        ((m / memory < 0.85) if higher else (m / memory > 1.15)):
                    misses.append(f"{scenario} {name}: everysec beyond 15% of memory")
    return rows, misses


def load(args):
    scenarios = args.scenarios.upper()
    print(f"# {run.machine()}; data directories on {filesystem(args.dir)}; "
          f"{'server on CPU 0, generator on CPU 1' if run.PINNED else 'not pinned'}; "
          f"{args.reps} run(s) per cell of {args.seconds} s after 1 s of warm-up; "
          f"Redis XADD MAXLEN ~ {args.maxlen}", flush=True)
    results = {}
    for scenario in scenarios:
        for rep in range(args.reps):
            for server, policy in CONFIGS:   # interleaved
                r = run_config(server, policy, scenario, args)
                results.setdefault((scenario, server, policy), []).append(r)
                print(scenario, label(server, policy), rep + 1, json.dumps(r), flush=True)
    rows, misses = compare_rows(results, scenarios)
    print()
    print("\n".join(rows))
    print()
    print("Figures: medians (min–max); for latencies lower is better, so mqd/Redis "
          "below 1 is mqd ahead.")
    print("Targets (mqd at least Redis's figure per policy; everysec within 15% of "
          "mqd in memory): " + ("all met" if not misses else "missed: " + "; ".join(misses)))


def fill(args, data):
    """Starts mqd on `data`, fills it with about --startup GiB of cached msgs,
    stops it: (messages, cache size per topic, seconds)."""
    messages = math.ceil(args.startup * 2**30 / STARTUP_RECORD)
    per_topic = math.ceil(messages / STARTUP_TOPICS)
    proc, port = run.start("mqd", mqd_startup_args(data, per_topic) + ["--fsync", "no"])
    t0 = time.monotonic()
    try:
        argv = [run.BENCH, "--port", str(port), "--proto", "mqd", "--fill", str(per_topic),
                "--topics", str(STARTUP_TOPICS), "--size", str(STARTUP_SIZE), "--json"]
        if run.PINNED:
            argv = ["taskset", "-c", "1"] + argv
        out = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
        if out.returncode != 0:
            raise RuntimeError(f"fill: {out.stderr.strip()}")
    finally:
        proc.send_signal(signal.SIGTERM)   # what a restart does: mqd syncs the log
        proc.wait(600)
    return per_topic * STARTUP_TOPICS, per_topic, time.monotonic() - t0


def mqd_startup_args(data, per_topic):
    # every msg stays cached (no memory limit, a cache holding each topic's
    # share), so the restart restores all of them
    return ["--data-dir", data, "--cache-size", str(per_topic), "--max-memory", "0"]


def drop_from_page_cache(path):
    """The file's pages out of the page cache (they are clean: mqd synced them
    at exit), so the next start reads the disk; only this file, not the
    machine's whole cache."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def answered(port):
    """True once mqd accepts a connection and answers a command."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=600) as s:
            s.sendall(PROBE)
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    return False
                reply += chunk
            return b'"success": true' in reply or b'"success":true' in reply
    except OSError:
        return False


def timed_start(args, data, per_topic):
    """Spawns mqd on `data` and times it until it answers: a dict of figures."""
    port = run.free_port()
    argv = [run.MQD, "--port", str(port), "--log-level", "info", *run.MQD_EXTRA,
            *mqd_startup_args(data, per_topic)]
    if run.PINNED:
        argv = ["taskset", "-c", "0"] + argv
    log = tempfile.TemporaryFile(mode="w+")
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
    try:
        while not answered(port):
            if proc.poll() is not None or time.monotonic() - t0 > 3600:
                log.seek(0)
                raise RuntimeError(f"mqd did not start: {log.read().strip()}")
            time.sleep(0.001)
        seconds = time.monotonic() - t0
        rss = rss_kib(proc.pid)
    finally:
        t1 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(600)
        stop = time.monotonic() - t1
    log.seek(0)
    records = next((line.split("records read back")[0].split()[-1]
                    for line in log if "records read back" in line), "?")
    return {"seconds": seconds, "stop_seconds": stop, "records": records, "rss_kib": rss}


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def data_files(data):
    """The snapshot and logs a start reads (not the lock)."""
    return [os.path.join(data, n) for n in sorted(os.listdir(data))
            if n.startswith(("log.", "snapshot."))]


def startup(args):
    data = tempfile.mkdtemp(prefix="durable-startup-", dir=args.dir)
    try:
        messages, per_topic, fill_seconds = fill(args, data)
        log_bytes = sum(os.path.getsize(f) for f in data_files(data))
        print(f"# {run.machine()}; data directory on {filesystem(args.dir)}")
        print(f"filled: {messages} msgs of {STARTUP_SIZE} B over {STARTUP_TOPICS} topics "
              f"(--cache-size {per_topic}), files {log_bytes / 2**30:.3f} GiB "
              f"({', '.join(os.path.basename(f) for f in data_files(data))}), "
              f"in {fill_seconds:.1f} s", flush=True)
        results = {}
        for rep in range(args.reps):
            for kind in ("cold", "warm"):
                if kind == "cold":
                    for f in data_files(data):
                        drop_from_page_cache(f)
                r = timed_start(args, data, per_topic)
                r["mb_per_s"] = log_bytes / r["seconds"] / 1e6
                results.setdefault(kind, []).append(r)
                print("startup", kind, rep + 1, json.dumps(r), flush=True)
        print()
        print(f"| page cache | start to first answer, s | MB/s of files | stop (SIGTERM), s | "
              f"RSS after start |")
        print("|---|---|---|---|---|")
        for kind, rs in results.items():
            print(f"| {kind} | {run.cell([r['seconds'] for r in rs])[1]} | "
                  f"{run.cell([r['mb_per_s'] for r in rs])[1]} | "
                  f"{run.cell([r['stop_seconds'] for r in rs])[1]} | "
                  f"{statistics.median(r['rss_kib'] for r in rs) / 2**20:.2f} GiB |")
        print(f"\nfiles: {log_bytes / 2**30:.3f} GiB, {results['cold'][0]['records']} records; "
              "cold: the files dropped from the page cache before the start "
              "(the host may still cache it)")
    finally:
        shutil.rmtree(data, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=5,
                   help="runs per cell, or starts of each kind (default %(default)s)")
    p.add_argument("--seconds", type=int, default=5,
                   help="measured seconds per run (default %(default)s)")
    p.add_argument("--scenarios", default="ABC", help="of A, B, C (default %(default)s)")
    p.add_argument("--maxlen", type=int, default=10000,
                   help="Redis XADD MAXLEN ~ N (default 10000; 0: no trim)")
    p.add_argument("--dir", default=tempfile.gettempdir(),
                   help="where the data directories go (default %(default)s)")
    p.add_argument("--mqd", default=run.MQD, help="the mqd binary (default %(default)s)")
    p.add_argument("--startup", type=float, metavar="GIB",
                   help="time mqd's start on about GIB GiB of cached msgs instead")
    args = p.parse_args()
    if set(args.scenarios.upper()) - set("ABC"):
        p.error("--scenarios takes A, B and C")
    run.MQD = args.mqd
    if args.startup:
        startup(args)
    else:
        load(args)


if __name__ == "__main__":
    main()
