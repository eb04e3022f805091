#!/usr/bin/env python3
"""`eddy echo` against real clients: Python sockets, many connections, a
client that half-closes, a client that never reads, graceful shutdown.

Usage: test_echo.py PATH_TO_EDDY. Ends with "passed=P failed=F".
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

EDDY = sys.argv[1]
results = []


def case(name):
    def wrap(fn):
        try:
            fn()
            results.append((name, None))
        except Exception as e:  # a failed case, whatever went wrong
            results.append((name, f"{type(e).__name__}: {e}"))
        return fn
    return wrap


class Server:
    """eddy echo on a free loopback port; stops it on exit."""

    def __init__(self, *extra, listen=None):
        self.port = free_port()
        self.listen = listen or f"tcp:{self.port}:interface=127.0.0.1"
        self.p = subprocess.Popen([EDDY, "echo", "--listen", self.listen, *extra],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.p.poll() is not None:
                raise AssertionError("eddy exited: " + self.p.stderr.read())
            try:
                if self.listen.startswith("unix:"):
                    s = socket.socket(socket.AF_UNIX)
                    s.connect(self.listen[5:].split(":")[0])
                else:
                    s = socket.create_connection(("127.0.0.1", self.port), timeout=1)
                s.close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("eddy echo did not start listening")

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def rss_kb(self):
        with open(f"/proc/{self.p.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self, timeout=15):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            out, err = self.p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            out, err = self.p.communicate()
            raise AssertionError("eddy echo did not stop on SIGTERM")
        return self.p.returncode, err

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.p.kill()
            self.p.communicate()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def recv_all(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


@case("a client gets its bytes back")
def _():
    with Server() as srv:
        c = srv.connect()
        c.sendall(b"hello, eddy\n")
        assert recv_all(c, 12) == b"hello, eddy\n"
        c.close()
        rc, err = srv.stop()
        assert rc == 0, (rc, err)
        assert "connection from 127.0.0.1" in err, err


@case("a client that half-closes still receives every echo, then EOF")
def _():
    with Server() as srv:
        c = srv.connect()
        payload = os.urandom(3 * 1024 * 1024)
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
        got = recv_all(c, len(payload) + 1)
        assert got == payload, (len(got), len(payload))
        c.close()


@case("200 concurrent clients are each echoed")
def _():
    with Server() as srv:
        clients = [srv.connect() for _ in range(200)]
        for i, c in enumerate(clients):
            c.sendall(f"client {i}\n".encode())
        for i, c in enumerate(clients):
            want = f"client {i}\n".encode()
            assert recv_all(c, len(want)) == want, i
            c.close()


@case("a client that never reads cannot make the server buffer without bound")
def _():
    with Server() as srv:
        c = srv.connect()
        c.setblocking(False)
        before = srv.rss_kb()
        chunk = b"x" * 65536
        sent, deadline = 0, time.time() + 5
        while time.time() < deadline and sent < 256 * 1024 * 1024:
            try:
                sent += c.send(chunk)
            except BlockingIOError:
                time.sleep(0.01)
        grown = srv.rss_kb() - before
        assert sent < 64 * 1024 * 1024, f"the server kept reading: {sent} bytes"
        assert grown < 32 * 1024, f"server memory grew by {grown} kB"
        c.close()


@case("SIGTERM lets open connections finish within the grace time, then exits 0")
def _():
    with Server("--grace", "5") as srv:
        c = srv.connect()
        srv.p.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        c.sendall(b"still here")
        assert recv_all(c, 10) == b"still here"
        t0 = time.time()
        c.close()
        rc, err = srv.stop()
        assert rc == 0, (rc, err)
        assert time.time() - t0 < 3, "did not exit when the last connection closed"
        # No longer accepting.
        try:
            socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()
            raise AssertionError("still accepting after SIGTERM")
        except ConnectionRefusedError:
            pass


@case("the grace time ends connections that do not finish")
def _():
    with Server("--grace", "0.5") as srv:
        c = srv.connect()
        t0 = time.time()
        rc, err = srv.stop()
        assert rc == 0 and time.time() - t0 < 5, (rc, err)
        assert "still open" in err, err
        c.close()


@case("unix socket endpoint, removed on exit")
def _():
    d = tempfile.mkdtemp()
    path = os.path.join(d, "echo.sock")
    with Server(listen=f"unix:{path}:mode=600") as srv:
        assert oct(os.stat(path).st_mode & 0o777) == "0o600"
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.sendall(b"unix")
        assert recv_all(s, 4) == b"unix"
        s.close()
        rc, _ = srv.stop()
        assert rc == 0
    assert not os.path.exists(path)
    os.rmdir(d)


@case("bad command lines exit 2 with a message naming the problem")
def _():
    for args, fragment in [
        ([], "--listen"),
        (["--listen"], "needs an endpoint"),
        (["--listen", "tcp:notaport"], "notaport"),
        (["--listen", "bogus:1"], "bogus"),
        (["--listen", "tcp:1", "--grace", "-1"], "--grace"),
        (["--frob"], "'--frob'"),
    ]:
        p = subprocess.run([EDDY, "echo", *args], capture_output=True, text=True, timeout=10)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
        assert fragment in p.stderr, (args, p.stderr)


@case("a port in use is a clear error, exit 1")
def _():
    with Server() as srv:
        p = subprocess.run([EDDY, "echo", "--listen", srv.listen],
                           capture_output=True, text=True, timeout=10)
        assert p.returncode == 1, (p.returncode, p.stderr)
        assert "in use" in p.stderr, p.stderr


failed = 0
for name, err in results:
    print(("ok     " if err is None else "FAILED ") + name + ("" if err is None else ": " + err))
    failed += err is not None
print(f"passed={len(results) - failed} failed={failed}")
