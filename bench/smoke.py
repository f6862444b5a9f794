"""Smoke test of mqd-bench: one second of fan-out against a fresh mqd on a
free loopback port; every acknowledged send must reach all three subscribers."""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

mqd, bench = sys.argv[1], sys.argv[2]
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
log = tempfile.TemporaryFile()
server = subprocess.Popen([mqd, "--port", str(port)], stderr=log, stdin=subprocess.DEVNULL)
try:
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline and server.poll() is None, "mqd did not start"
            time.sleep(0.01)
    out = subprocess.run([bench, "--port", str(port), "--subscribers", "3", "--publishers", "1",
                          "--duration", "1", "--warmup", "0.2", "--window", "32",
                          "--server-pid", str(server.pid), "--json"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    print(r)
    assert r["acked"] > 0 and r["delivered"] > 0
    assert r["lost"] == 0 and r["duplicated"] == 0
    assert r["delivered"] == r["expected"] == 3 * r["acked"]
    assert r["server_rss_kib"] > 0
    print("1 passed, 0 failed")
finally:
    server.terminate()
    assert server.wait(10) == 0
