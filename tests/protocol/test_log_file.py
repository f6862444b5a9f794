"""--log-file PATH: logs appended to a file, reopened on SIGHUP."""
import os
import re
import signal

from mqd_harness import Server, run_mqd, subscribe

LINE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (ERROR|WARN|INFO|DEBUG) .*"


def connect_and_leave(server):
    """A client that comes and goes: two debug lines with its address."""
    c = server.client()
    where = "127.0.0.1:%d" % c.sock.getsockname()[1]
    subscribe(c, "t")
    c.send("quit\n")
    assert c.at_eof()
    c.close()
    server.wait_for_log(f"client {where} closed")
    return where


def test_logs_go_to_the_file_not_stderr(start, tmp_path):
    log = tmp_path / "mqd.log"
    server = start("--log-file", str(log), "--log-level", "debug", log_file=str(log))
    where = connect_and_leave(server)
    text = log.read_text()
    assert f"INFO listening on 127.0.0.1:{server.port}\n" in text
    assert f"DEBUG client {where} connected\n" in text
    assert all(re.fullmatch(LINE, line) for line in text.splitlines())
    assert server.stderr() == ""


def test_the_file_is_appended_to(start, tmp_path):
    log = tmp_path / "mqd.log"
    log.write_text("an earlier line\n")
    server = start(f"--log-file={log}", log_file=str(log))
    assert log.read_text().startswith("an earlier line\n")
    assert "listening on" in log.read_text()
    assert server.stop() == 0
    assert "received SIGTERM, shutting down" in log.read_text()


def test_the_log_file_from_the_config_file(start, tmp_path):
    log = tmp_path / "mqd.log"
    server = start(config=f"log-file {log}\n", log_file=str(log))
    assert "listening on" in log.read_text()
    assert server.stderr() == ""


def test_a_log_file_that_cannot_be_opened_exits_1(tmp_path):
    path = tmp_path / "missing" / "mqd.log"
    status, out, err = run_mqd("--log-file", str(path), "--port", "0")
    assert status == 1 and out == ""
    assert err == f"mqd: cannot open log file {path}: No such file or directory\n"
    status, _, err = run_mqd("--log-file", str(tmp_path), "--port", "0")
    assert status == 1
    assert err == f"mqd: cannot open log file {tmp_path}: Is a directory\n"


def test_sighup_reopens_the_file_after_it_was_moved(start, tmp_path):
    log = tmp_path / "mqd.log"
    rotated = tmp_path / "mqd.log.1"
    server = start("--log-file", str(log), "--log-level", "debug", log_file=str(log))
    before = connect_and_leave(server)
    os.rename(log, rotated)
    server.proc.send_signal(signal.SIGHUP)
    server.wait_for_log("INFO received SIGHUP, log file reopened")
    after = connect_and_leave(server)
    old, new = rotated.read_text(), log.read_text()
    assert f"client {before} closed" in old and "listening on" in old
    assert f"client {after} connected" in new and "listening on" not in new
    assert f"client {after}" not in old
    assert server.proc.poll() is None


def test_sighup_keeps_the_old_file_when_the_new_cannot_be_opened(start, tmp_path):
    directory = tmp_path / "logs"
    directory.mkdir()
    log = directory / "mqd.log"
    kept = tmp_path / "kept.log"
    server = start("--log-file", str(log), "--log-level", "debug", log_file=str(log))
    os.rename(log, kept)
    directory.rmdir()
    server.log_file = str(kept)
    server.proc.send_signal(signal.SIGHUP)
    server.wait_for_log(f"ERROR cannot reopen log file {log}: No such file or directory")
    where = connect_and_leave(server)
    assert f"client {where} connected" in kept.read_text()
    assert server.stop() == 0
    assert "received SIGTERM" in kept.read_text()


def test_sighup_without_a_log_file_keeps_serving(start):
    server = start()
    server.proc.send_signal(signal.SIGHUP)
    server.wait_for_log("INFO received SIGHUP, no log file to reopen")
    c = server.client()
    subscribe(c, "t")
    c.close()
    assert server.proc.poll() is None
