"""Runs the benchmark scenarios against mqd, Redis and NATS and writes
docs/BENCHMARKS.md (the table between its markers; the rest is kept).

Each cell starts a fresh server on a free loopback port, pinned to CPU 0 with
the load generator on CPU 1 (when there are two), and stops it after."""
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MQD = os.path.join(ROOT, "build-bench", "mqd")
BENCH = os.path.join(ROOT, "build-bench", "bench", "mqd-bench")
DOC = os.path.join(ROOT, "docs", "BENCHMARKS.md")
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
PINNED = os.cpu_count() >= 2
MQD_EXTRA = []   # more mqd arguments (bench/compare.py sets them)

# scenario: (title, bench args, figures: (key, label, higher is better))
SCENARIOS = {
    "A": ("fan-out: 1 topic, 100 subscribers, 1 publisher, 64 B, window 256",
          ["--subscribers", "100", "--topics", "1", "--publishers", "1"],
          [("delivered_per_s", "delivered msg/s", True)]),
    "B": ("many topics: 1000 topics x 1 subscriber, 10 publishers, 64 B",
          ["--subscribers", "1000", "--topics", "1000", "--publishers", "10"],
          [("delivered_per_s", "delivered msg/s", True)]),
    "C": ("latency: 1 topic, 10 subscribers, 10,000 msg/s paced",
          ["--subscribers", "10", "--topics", "1", "--rate", "10000"],
          [("p50_us", "p50 us", False), ("p99_us", "p99 us", False),
           ("p999_us", "p99.9 us", False)]),
    "D": ("memory: 10,000 idle connections, one topic each",
          ["--idle", "--subscribers", "10000"],
          [("bytes_per_connection", "server bytes per connection", False)]),
    "E": ("cache: 10,000 topics x 100 cached messages of 1 KiB (mqd only)",
          ["--fill", "100", "--topics", "10000", "--size", "1024"],
          [("rss_over_raw", "server RSS / raw cached bytes", False)]),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(server, extra=()):
    """A fresh server on a free port, once it accepts connections: (proc, port).
    `extra`: more server arguments, after the ones here (a later one wins)."""
    port = free_port()
    if server == "mqd":
        argv = [MQD, "--port", str(port), "--max-clients", "20000", "--log-level", "warn",
                *MQD_EXTRA]
    elif server == "redis":
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--maxclients", "20000", "--loglevel", "warning"]
    else:
        argv = ["nats-server", "--addr", "127.0.0.1", "--port", str(port)]
    argv += extra
    if PINNED:
        argv = ["taskset", "-c", "0"] + argv
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f"{server} did not start: {' '.join(argv)}")
            time.sleep(0.01)


def run_cell(server, scenario, seconds, proto=None, extra=(), bench_extra=()):
    """One run of a scenario on a fresh server; mqd-bench speaks `proto`
    (default: the server's own), `extra` goes to the server, `bench_extra`
    to mqd-bench."""
    proc, port = start(server, extra)
    try:
        argv = [BENCH, "--port", str(port), "--proto", proto or server,
                "--server-pid", str(proc.pid), "--json", "--duration", str(seconds),
                "--warmup", "1"] + SCENARIOS[scenario][1] + list(bench_extra)
        if PINNED:
            argv = ["taskset", "-c", "1"] + argv
        out = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise RuntimeError(f"{server} {scenario}: {out.stderr.strip()}")
        result = json.loads(out.stdout)
        if result.get("lost") or result.get("duplicated"):
            raise RuntimeError(f"{server} {scenario}: lost or duplicated deliveries: {result}")
        return result
    finally:
        proc.terminate()
        proc.wait(30)


def fmt(v):
    if v >= 1e6:
        return f"{v / 1e6:.2f} M"
    if v >= 1e4:
        return f"{v / 1e3:.0f} k"
    return f"{v:.3g}" if v < 10 else f"{v:.0f}"


def cell(values):
    med = statistics.median(values)
    if len(values) == 1:
        return med, fmt(med)
    return med, f"{fmt(med)} ({fmt(min(values))}–{fmt(max(values))})"


def version(argv):
    """What `argv` prints, or "" when the program is not installed (bench/durable.py
    runs without NATS)."""
    try:
        return subprocess.run(argv, capture_output=True, text=True).stdout
    except FileNotFoundError:
        return ""


def machine():
    model = "unknown"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    redis, nats, mqd = (version(argv) for argv in (["redis-server", "--version"],
                                                   ["nats-server", "--version"],
                                                   [MQD, "--version"]))
    return (f"{os.cpu_count()} CPUs ({model}), Linux {platform.release()}; "
            f"{mqd.strip()}; Redis {redis.split()[2].removeprefix('v=') if redis else '?'}; "
            f"{nats.strip() or 'nats-server ?'}")


def ratio(a, b):
    return f"{a / b:.2f}" if b else "–"


# NATS as its users run it: verbose off (else the server writes +OK for each
# publish, work its clients never ask of it), publishers windowed by PING
NATS_AS_ITS_CLIENTS = ("--nats-ping", "64")


def main():
    quick = "--quick" in sys.argv
    reps, seconds = (1, 2) if quick else (3, 5)
    results = {}
    for scenario in SCENARIOS:
        servers = ["mqd"] if scenario == "E" else ["mqd", "redis", "nats"]
        for rep in range(reps):
            for server in servers:   # interleaved: mqd, redis, nats, mqd, ...
                r = run_cell(server, scenario, seconds,
                             bench_extra=NATS_AS_ITS_CLIENTS if server == "nats" else ())
                results.setdefault((scenario, server), []).append(r)
                print(scenario, server, rep + 1, json.dumps(r), flush=True)
    rows = ["| scenario | figure | mqd | Redis | mqd/Redis | NATS | mqd/NATS |",
            "|---|---|---|---|---|---|---|"]
    for scenario, (title, _, figures) in SCENARIOS.items():
        for key, label, _higher in figures:
            m_med, m_txt = cell([r[key] for r in results[(scenario, "mqd")]])
            others = []
            for server in ("redis", "nats"):
                if (scenario, server) in results:
                    o_med, o_txt = cell([r[key] for r in results[(scenario, server)]])
                    others += [o_txt, ratio(m_med, o_med)]
                else:
                    others += ["–", "–"]
            rows.append(f"| {scenario}. {title} | {label} | {m_txt} | {' | '.join(others)} |")
    pin = "server on CPU 0, load generator on CPU 1" if PINNED else "not pinned (one CPU)"
    block = "\n".join([
        BEGIN,
        f"Latest run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"`bench/run.sh{' --quick' if quick else ''}`; {machine()}; {pin}; "
        f"{reps} run(s) per cell of {seconds} s after 1 s of warm-up, servers interleaved; "
        "median (min–max). Latencies in microseconds; for them and for memory, lower is better.",
        "",
        *rows,
        "",
        "Commands, each cell on a fresh server started on a free port P "
        "(`mqd --port P --max-clients 20000`, `redis-server --port P --save '' "
        "--appendonly no --maxclients 20000`, `nats-server --addr 127.0.0.1 --port P`; "
        "mqd-bench speaks NATS as its clients do, `verbose` off and a PING after every "
        "64 publishes, whose PONG acknowledges them and windows the publisher; mqd and "
        "Redis acknowledge each send):",
        "",
        *[f"- {name}: `mqd-bench --port P --proto mqd|redis|nats --server-pid PID --json "
          f"--duration {seconds} --warmup 1 {' '.join(args)}`"
          for name, (_, args, _) in SCENARIOS.items()],
        END,
    ])
    print("\n".join(rows))
    if quick:   # a try-out: the committed results stay as they are
        print("--quick: docs/BENCHMARKS.md left as it is")
        return
    text = open(DOC).read() if os.path.exists(DOC) else "# Benchmarks\n\n" + BEGIN + "\n" + END + "\n"
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    with open(DOC, "w") as f:
        f.write(head + block + tail)


if __name__ == "__main__":
    main()
