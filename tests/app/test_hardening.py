#!/usr/bin/env python3
"""What a hostile user tries against `eddy`: a log reader that stalls,
clients that half-close towards a target that never answers, clients that
connect and go quiet, and control bytes or huge values in arguments and in
child output.

Usage: test_hardening.py PATH_TO_EDDY. Ends with "passed=P failed=F".
"""
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Server, case, free_port, recv_all, report  # noqa: E402

EDDY = sys.argv[1]


def wait_until(cond, timeout, what):
    deadline = time.time() + timeout
    while not cond():
        if time.time() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.02)


def nfds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def run(*args, timeout=10):
    p = subprocess.run([EDDY, *args], capture_output=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def _connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


# ---- A stalled log reader ---------------------------------------------------------

@case("a log reader that stalls costs log lines, never service; the drop is counted")
def _():
    port = free_port()
    # stderr is a pipe this test does not read until the end: it fills up.
    p = subprocess.Popen([EDDY, "--log-level", "debug", "echo", "--listen",
                          f"tcp:{port}:interface=127.0.0.1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: _connects(port), 10, "eddy echo listening")
        # Two debug lines per connection, about 130 bytes: 1,000 of them
        # are far more than a pipe holds.
        t0 = time.time()
        for i in range(1000):
            c = socket.create_connection(("127.0.0.1", port), timeout=5)
            c.sendall(b"ping %d" % i)
            assert recv_all(c, len(b"ping %d" % i)) == b"ping %d" % i, i
            c.close()
        took = time.time() - t0
        assert took < 60, took
        # The reader comes back: what was dropped is said, then logging goes on.
        got = bytearray()
        done = threading.Event()

        def drain():
            while True:
                chunk = p.stderr.read1(65536)
                if not chunk:
                    break
                got.extend(chunk)
            done.set()

        threading.Thread(target=drain, daemon=True).start()

        def noted():
            c = socket.create_connection(("127.0.0.1", port), timeout=5)
            c.sendall(b"x")
            recv_all(c, 1)
            c.close()
            return b"line(s) dropped" in got
        wait_until(noted, 10, "the dropped lines counted in the log")
        m = re.search(rb"log: (\d+) line\(s\) dropped", got)
        assert m and int(m.group(1)) > 0, got[-400:]
        t0 = time.time()
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=10) == 0
        assert time.time() - t0 < 5, time.time() - t0
        assert done.wait(5)
        assert b"echo: stopped" in got, got[-400:]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@case("SIGTERM stops a server whose log reader never reads")
def _():
    port = free_port()
    r, w = os.pipe()  # never read
    p = subprocess.Popen([EDDY, "--log-level", "debug", "echo", "--listen",
                          f"tcp:{port}:interface=127.0.0.1"],
                         stdout=subprocess.DEVNULL, stderr=w)
    os.close(w)
    try:
        wait_until(lambda: _connects(port), 10, "eddy echo listening")
        for _ in range(1000):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        c.sendall(b"alive")
        assert recv_all(c, 5) == b"alive"
        c.close()
        p.send_signal(signal.SIGTERM)
        try:
            assert p.wait(timeout=10) == 0
        except subprocess.TimeoutExpired:
            with open(f"/proc/{p.pid}/wchan") as f:
                raise AssertionError(f"still running after SIGTERM, in {f.read()!r}")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(r)


# ---- Half-open relays and quiet clients ----------------------------------------------

class SilentTarget:
    """Accepts every connection and never reads, answers or closes."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stop = False
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        self.sock.settimeout(0.1)
        while not self.stop:
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.t.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


@case("portforward: 500 clients send and close towards a silent target; nothing piles up")
def _():
    target = SilentTarget()
    try:
        with Server(EDDY, "portforward", "--connect",
                    f"tcp:host=127.0.0.1:port={target.port}", nofile=4096) as pf:
            base = nfds(pf.p.pid)
            for _ in range(500):
                c = pf.connect()
                c.sendall(b"request")
                c.close()
            # Each relay lasts the half-close timeout (0.5 s) of silence.
            wait_until(lambda: nfds(pf.p.pid) <= base + 10, 15,
                       f"descriptors back to {base} (now {nfds(pf.p.pid)})")
            rc, err = pf.stop()
            assert rc == 0, (rc, err)
    finally:
        target.close()


@case("portforward: after a half-close, the answer still flows while it keeps coming")
def _():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]

    def slow_answer():
        srv.settimeout(10)
        while True:
            conn, _ = srv.accept()
            conn.settimeout(10)
            if conn.recv(100) == b"":
                conn.close()  # the start-up probe
                continue
            for i in range(6):  # 1.2 s in all, never 0.5 s of silence
                conn.sendall(b"part%d\n" % i)
                time.sleep(0.2)
            conn.close()
            return

    t = threading.Thread(target=slow_answer, daemon=True)
    t.start()
    with Server(EDDY, "portforward", "--connect", f"tcp:host=127.0.0.1:port={port}") as pf:
        c = pf.connect()
        c.sendall(b"question")
        c.shutdown(socket.SHUT_WR)
        got = recv_all(c, 1000)
        assert got == b"".join(b"part%d\n" % i for i in range(6)), got
        c.close()
        pf.stop()
    t.join(5)
    srv.close()


@case("portforward: --half-close-timeout 0 keeps a half-closed relay open")
def _():
    target = SilentTarget()
    try:
        with Server(EDDY, "portforward", "--connect",
                    f"tcp:host=127.0.0.1:port={target.port}",
                    "--half-close-timeout", "0") as pf:
            c = pf.connect()
            c.sendall(b"request")
            c.shutdown(socket.SHUT_WR)
            # Three times the default bound: the relay must hold throughout.
            c.settimeout(1.5)
            try:
                data = c.recv(10)
                raise AssertionError(f"the relay ended: {data!r}")
            except socket.timeout:
                pass
            c.close()
            pf.stop()
    finally:
        target.close()


@case("echo and portforward: a client that goes quiet is closed after --idle-timeout")
def _():
    with Server(EDDY, "echo", "--idle-timeout", "0.5") as echo:
        quiet = echo.connect()
        talker = echo.connect()
        t0 = time.time()
        # The talker stays: a byte every 0.2 s for 1.5 s.
        while time.time() - t0 < 1.5:
            talker.sendall(b"x")
            assert recv_all(talker, 1) == b"x"
            time.sleep(0.2)
        quiet.settimeout(5)
        assert quiet.recv(10) == b""  # closed by the server
        talker.sendall(b"y")
        assert recv_all(talker, 1) == b"y"
        with Server(EDDY, "portforward", "--connect",
                    f"tcp:host=127.0.0.1:port={echo.port}", "--idle-timeout", "0.5") as pf:
            c = pf.connect()
            c.sendall(b"hi")
            assert recv_all(c, 2) == b"hi"
            t0 = time.time()
            c.settimeout(5)
            assert c.recv(10) == b""
            assert 0.3 < time.time() - t0 < 4, time.time() - t0
            pf.stop()
        talker.close()
        quiet.close()
        echo.stop()


@case("--idle-timeout and --half-close-timeout refuse bad values with their bounds")
def _():
    for args in [("echo", "--listen", "tcp:0", "--idle-timeout", "-1"),
                 ("echo", "--listen", "tcp:0", "--idle-timeout", "soon"),
                 ("portforward", "--listen", "tcp:0", "--connect", "tcp:host=h:port=1",
                  "--half-close-timeout", "1e308")]:
        rc, out, err = run(*args)
        assert rc == 2, (args, rc, err)
        assert b"needs seconds from 0 to 86400" in err, (args, err)


@case("running out of memory on a connection is a warning; a client's reset is not")
def _():
    # The fault table of a test build: the 2nd recv (the first after the
    # start-up probe's end) fails as if a buffer could not be allocated.
    os.environ["EDDY_FAULTS"] = "recv:ENOMEM:nth=2"
    try:
        srv = Server(EDDY, "echo")
    finally:
        del os.environ["EDDY_FAULTS"]
    with srv:
        c = srv.connect()
        c.sendall(b"x")
        c.settimeout(5)
        try:
            assert c.recv(10) == b""
        except ConnectionResetError:
            pass
        c.close()
        assert srv.wait_log("warn: echo: a client closed: Cannot allocate memory"), srv.stderr()
        # A reset by the client: not the operator's business.
        c = srv.connect()
        c.sendall(b"y")
        assert recv_all(c, 1) == b"y"
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()
        rc, err = srv.stop()
        assert rc == 0, (rc, err)
        assert err.count("warn:") == 1, err


# ---- Untrusted text in messages and logs ---------------------------------------------

@case("a huge or control-laden --listen is quoted cut and escaped: one short line")
def _():
    evil = "tcp:" + "A" * 100000 + "\n\x1b[31mred\r"
    rc, _, err = run("echo", "--listen", evil)
    assert rc == 2, (rc, err)
    assert len(err) < 2000, len(err)
    assert err.count(b"\n") == 1 and b"\x1b" not in err and b"\r" not in err, err[:300]
    assert b"bytes in all" in err, err[:300]
    evil = "unix:/nonexistent/dir/\x1b]0;title\x07sock"
    rc, _, err = run("echo", "--listen", evil)
    assert rc == 1, (rc, err)
    assert b"\x1b" not in err and b"\x07" not in err and b"\\x1b" in err, err


@case("a bad --connect is quoted cut and escaped; a repeated --connect is refused")
def _():
    rc, _, err = run("portforward", "--listen", "tcp:0", "--connect",
                     "tcp:host=" + "B" * 100000 + "\x1b[2J")
    assert rc == 2, (rc, err)
    assert len(err) < 2000 and err.count(b"\n") == 1 and b"\x1b" not in err, err[:300]
    rc, _, err = run("portforward", "--listen", "tcp:0", "--connect", "tcp:host=a:port=1",
                     "--connect", "tcp:host=b:port=2")
    assert rc == 2, (rc, err)
    assert b"--connect is given twice" in err, err


@case("unknown options and commands are quoted escaped")
def _():
    for args in [("\x1b[31m",), ("echo", "--\x1b[31m"), ("--log-level", "\x1b[31m", "version"),
                 ("help", "\x1b[31m")]:
        rc, _, err = run(*args)
        assert rc == 2, (args, rc, err)
        assert b"\x1b" not in err and b"\\x1b[31m" in err, (args, err)


@case("procmon: child output with ESC, CR, NUL and binary bytes is logged escaped, whole")
def _():
    script = r"printf 'a\033[31mred\rb\000after\377\376end\n'; printf 'caf\303\251 ok\n'; exec sleep 30"
    p = subprocess.Popen([EDDY, "procmon", "--process", "out=" + script],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        got = bytearray()
        deadline = time.time() + 10
        os.set_blocking(p.stderr.fileno(), False)
        while b"ok" not in got and time.time() < deadline:
            try:
                chunk = os.read(p.stderr.fileno(), 65536)
                if chunk:
                    got.extend(chunk)
                    continue
            except BlockingIOError:
                pass
            time.sleep(0.02)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=15)
        line = [ln for ln in got.split(b"\n") if b"out: a" in ln]
        assert line, got
        assert line[0].endswith(b"out: a\\x1b[31mred\\rb\\x00after\\xff\\xfeend"), line[0]
        assert "info: out: café ok".encode() in got, got  # valid UTF-8 stays
        assert b"\x1b" not in got and b"\r" not in got and b"\x00" not in got
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@case("procmon: a process name with a control character or a space is refused")
def _():
    for name in ["bad\nname", "bad\x1bname", "two words", "tab\tname"]:
        rc, out, err = run("procmon", "--process", name + "=true")
        assert rc == 2, (name, rc, err)
        assert b"control character" in err and err.count(b"\n") == 1, (name, err)
        assert b"\x1b" not in err


report()
