"""TLS beside Redis and NATS (issue 13): scenarios A, B and C with every
connection in TLS, and the rate of new TLS connections, against mqd, Redis
and NATS in one run.

    python3 bench/tls.py [--reps N] [--seconds S] [--scenarios ABCH]
                         [--concurrency N] [--nats-ping K] [--mqd PATH] [--write]

A throwaway CA and a server certificate for 127.0.0.1 (ECDSA P-256, made by
tests/protocol/tls_certs.py) are made in a temporary directory for the run
and removed after it. Each cell starts a fresh server listening for TLS
only, on a free loopback port, pinned as bench/run.py pins (server on CPU 0,
mqd-bench on CPU 1), checks that it completes a verified handshake, runs
mqd-bench --tls, and stops it:

- mqd: build-bench/mqd --no-plain --tls-port P --tls-cert --tls-key
- Redis: redis-server --port 0 --tls-port P with the same files and
  --tls-auth-clients no
- NATS: nats-server -c FILE, FILE holding listen and a tls block with the
  same files (and timeout 10, mqd's default handshake timeout: NATS's own
  is 2 s, which the 1,000 handshakes of scenario B at once may pass)

NATS runs as its clients run it, not with verbose on (which makes it write
+OK for every publish, work its users never ask of it): verbose off, a
publisher windowed by a PING every --nats-ping msgs, whose PONG
acknowledges them (how NATS clients flush), where mqd and Redis answer
every publish.

H, the handshake rate: --concurrency connections in flight, each connects,
does a full TLS handshake (no session resumed: mqd-bench checks), sends one
request (mqd: subscribe; Redis: PING; NATS: CONNECT and PING), reads its
reply and closes; new connections per second over --seconds. The generator
does not verify the certificate in H (it does in A, B and C, outside the
measured time), so its share of a handshake is as small as OpenSSL lets it
be; still, OpenSSL 3.0's certificate parsing makes it the costlier side,
so H reports the server's CPU time per connection too: that figure compares
the servers when the generator is what runs out of CPU.

Per scenario and repetition the servers are interleaved (mqd, Redis, NATS).
It prints every run, then a markdown table of medians (min-max); with
--write it also puts the table in docs/BENCHMARKS.md, in the section
"## TLS (issue 13)" between its markers (made before "## History" if
missing; the rest of the file is kept)."""
import argparse
import json
import os
import pathlib
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

import run

sys.path.insert(0, os.path.join(run.ROOT, "tests", "protocol"))
import tls_certs  # noqa: E402  (the TLS tests' certificates)

SERVERS = ("mqd", "redis", "nats")
NAMES = {"mqd": "mqd", "redis": "Redis", "nats": "NATS"}
BEGIN, END = "<!-- tls:begin -->", "<!-- tls:end -->"
SECTION = "## TLS (issue 13)"


def scenarios(args):
    """run.py's A, B and C, and H, the handshake rate: (title, bench args, figures)."""
    s = {k: run.SCENARIOS[k] for k in "ABC"}
    s["H"] = (f"handshakes: new TLS connections, {args.concurrency} in flight, each a full "
              "handshake, one request and its reply, close",
              ["--handshakes", str(args.seconds), "--concurrency", str(args.concurrency)],
              [("connections_per_s", "connections/s", True),
               ("server_cpu_us_per_connection", "server CPU us per connection", False),
               ("p99_us", "p99 us, connect to reply", False)])
    return s


def server_argv(server, port, pki):
    cert, key, ca = (str(pki / n) for n in ("server.pem", "server.key", "ca.pem"))
    if server == "mqd":
        return [run.MQD, "--no-plain", "--tls-port", str(port), "--tls-cert", cert,
                "--tls-key", key, "--max-clients", "20000", "--log-level", "warn",
                *run.MQD_EXTRA]
    if server == "redis":
        return ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--maxclients", "20000",
                "--loglevel", "warning", "--tls-cert-file", cert, "--tls-key-file", key,
                "--tls-ca-cert-file", ca, "--tls-auth-clients", "no"]
    conf = pki / f"nats-{port}.conf"
    conf.write_text(f'listen: "127.0.0.1:{port}"\n'
                    f'tls {{\n  cert_file: "{cert}"\n  key_file: "{key}"\n  timeout: 10\n}}\n')
    return ["nats-server", "-c", str(conf)]


def handshake(server, port, pki):
    """True once the server completes a handshake that verifies its
    certificate against the CA for 127.0.0.1."""
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            if server == "nats":   # INFO comes in the clear, then TLS
                info = b""
                while not info.endswith(b"\n"):
                    chunk = s.recv(4096)
                    if not chunk:
                        return False
                    info += chunk
            with ctx.wrap_socket(s, server_hostname="127.0.0.1"):
                return True
    except ssl.SSLCertVerificationError:
        raise   # it will not get better
    except (OSError, ssl.SSLError):
        return False


def start(server, pki):
    """A fresh TLS-only server on a free port, once it completes a verified
    handshake: (proc, port)."""
    port = run.free_port()
    argv = server_argv(server, port, pki)
    if run.PINNED:
        argv = ["taskset", "-c", "0"] + argv
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    try:
        while not handshake(server, port, pki):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{server} did not start: {' '.join(argv)}")
            time.sleep(0.02)
    except BaseException:
        stop(proc)
        raise
    return proc, port


def stop(proc):
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def bench_argv(server, scenario, port, pid, args, pki):
    argv = [run.BENCH, "--port", str(port), "--proto", server, "--tls", "--server-pid",
            str(pid), "--json", "--warmup", "1", *scenarios(args)[scenario][1]]
    if scenario != "H":
        argv += ["--duration", str(args.seconds), "--tls-ca", str(pki / "ca.pem")]
    if server == "nats" and scenario != "H":
        argv += ["--nats-ping", str(args.nats_ping)]
    return (["taskset", "-c", "1"] if run.PINNED else []) + argv


def run_cell(server, scenario, args, pki):
    """One run of a scenario on a fresh server, stopped after."""
    proc, port = start(server, pki)
    try:
        argv = bench_argv(server, scenario, port, proc.pid, args, pki)
        out = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise RuntimeError(f"{server} {scenario}: {out.stderr.strip()}")
        result = json.loads(out.stdout)
        if result.get("lost") or result.get("duplicated") or result.get("resumed"):
            raise RuntimeError(f"{server} {scenario}: lost, duplicated or resumed: {result}")
        return result
    finally:
        stop(proc)


def table(results, scens):
    rows = ["| scenario | figure | mqd | Redis | mqd/Redis | NATS | mqd/NATS |",
            "|---|---|---|---|---|---|---|"]
    for scenario, (title, _, figures) in scens.items():
        if (scenario, "mqd") not in results:
            continue
        for key, label, _higher in figures:
            m_med, m_txt = run.cell([r[key] for r in results[(scenario, "mqd")]])
            cells = [m_txt]
            for server in ("redis", "nats"):
                o_med, o_txt = run.cell([r[key] for r in results[(scenario, server)]])
                cells += [o_txt, run.ratio(m_med, o_med)]
            rows.append(f"| {scenario}. {title} | {label} | {' | '.join(cells)} |")
    return rows


def notes(results):
    """What each server negotiated, and how busy the generator and the
    server were in H."""
    tls = {server: rs[0]["tls"] for (_, server), rs in results.items()}
    lines = ["Negotiated (the generator offers OpenSSL's defaults, each server picks): " +
             "; ".join(f"{NAMES[s]} {tls.get(s, '?')}" for s in SERVERS) + "."]
    if ("H", "mqd") in results:
        busy = []
        for s in SERVERS:
            rs = results[("H", s)]
            gen = statistics.median(r["cpu_percent"] for r in rs)
            srv = statistics.median(r["server_cpu_percent"] for r in rs)
            busy.append(f"{NAMES[s]}: generator {gen:.0f}%, server {srv:.0f}%")
        lines.append("H, CPU busy (medians; 100% is one core): " + "; ".join(busy) + ". "
                     "Where the generator is near 100% and the server is not, connections/s "
                     "is the generator's bound, and server CPU per connection is the figure "
                     "that compares the servers.")
    return lines


def write_doc(block):
    text = open(run.DOC).read() if os.path.exists(run.DOC) else "# Benchmarks\n"
    if BEGIN not in text:
        section = f"{SECTION}\n\n{BEGIN}\n{END}\n\n"
        at = text.find("\n## History")
        text = (text[:at + 1] + section + text[at + 1:]) if at >= 0 else \
            text.rstrip("\n") + "\n\n" + section
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    with open(run.DOC, "w") as f:
        f.write(head + block + tail)


def report(results, scens, args):
    rows = table(results, scens)
    pin = "server on CPU 0, mqd-bench on CPU 1" if run.PINNED else "not pinned (one CPU)"
    command = " ".join(["python3 bench/tls.py", *sys.argv[1:]])
    block = "\n".join([
        BEGIN,
        f"Latest run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, `{command}`; "
        f"{run.machine()}; {pin}; {args.reps} run(s) per cell of {args.seconds} s after 1 s "
        "of warm-up, servers interleaved; median (min–max). For latencies and CPU per "
        "connection lower is better (a ratio below 1 is mqd ahead).",
        "",
        *rows,
        "",
        *notes(results),
        "",
        "Every connection is TLS (TLS-only listeners; the certificate ECDSA P-256 from a "
        "throwaway CA), each cell on a fresh server: "
        "`mqd --no-plain --tls-port P --tls-cert F --tls-key F --max-clients 20000`, "
        "`redis-server --port 0 --tls-port P --tls-cert-file F --tls-key-file F "
        "--tls-ca-cert-file F --tls-auth-clients no --save '' --appendonly no "
        "--maxclients 20000`, `nats-server -c F` (`listen`, `tls { cert_file, key_file, "
        "timeout: 10 }`). mqd-bench: "
        f"`--tls --tls-ca F --duration {args.seconds} --warmup 1` and the scenario's "
        "arguments as in Results; NATS with verbose off and "
        f"`--nats-ping {args.nats_ping}` (a PING every {args.nats_ping} msgs acknowledges "
        "them, as NATS clients flush); H: "
        f"`--tls --handshakes {args.seconds} --warmup 1 --concurrency {args.concurrency}` "
        "(the certificate not verified by the generator; mqd's request a subscribe, Redis's "
        "PING, NATS's CONNECT and PING).",
        END,
    ])
    print()
    print("\n".join(rows))
    print()
    print("\n".join(notes(results)))
    if args.write:
        write_doc(block)
        print(f"\nwritten to {run.DOC}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=3, help="runs per cell (default %(default)s)")
    p.add_argument("--seconds", type=int, default=5,
                   help="measured seconds per run (default %(default)s)")
    p.add_argument("--scenarios", default="ABCH",
                   help="of A, B, C and H, the handshake rate (default %(default)s)")
    p.add_argument("--concurrency", type=int, default=50,
                   help="H: connections in flight (default %(default)s)")
    p.add_argument("--nats-ping", type=int, default=64,
                   help="NATS publishers: a PING every K msgs (default %(default)s)")
    p.add_argument("--mqd", default=run.MQD, help="the mqd binary (default %(default)s)")
    p.add_argument("--write", action="store_true",
                   help="put the table in docs/BENCHMARKS.md under " + SECTION)
    args = p.parse_args()
    wanted = args.scenarios.upper()
    if not wanted or set(wanted) - set("ABCH"):
        p.error("--scenarios takes A, B, C and H")
    run.MQD = args.mqd
    scens = {k: v for k, v in scenarios(args).items() if k in wanted}
    pki = pathlib.Path(tempfile.mkdtemp(prefix="tls-bench-"))
    try:
        tls_certs.make_pki(pki)
        print(f"# {run.machine()}; "
              f"{'server on CPU 0, generator on CPU 1' if run.PINNED else 'not pinned'}; "
              f"{args.reps} run(s) per cell of {args.seconds} s after 1 s of warm-up",
              flush=True)
        results = {}
        for scenario in scens:
            for rep in range(args.reps):
                for server in SERVERS:   # interleaved
                    r = run_cell(server, scenario, args, pki)
                    results.setdefault((scenario, server), []).append(r)
                    print(scenario, server, rep + 1, json.dumps(r), flush=True)
        report(results, scens, args)
    finally:
        shutil.rmtree(pki, ignore_errors=True)


if __name__ == "__main__":
    main()
