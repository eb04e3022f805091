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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Server as _Server, case, recv_all, report

EDDY = sys.argv[1]


def Server(*extra, listen=None, nofile=None, global_opts=()):
    probe = listen[5:].split(":")[0] if listen and listen.startswith("unix:") else None
    return _Server(EDDY, "echo", *extra, listen=listen, probe=probe, nofile=nofile,
                   global_opts=global_opts)


@case("a client gets its bytes back; at debug level its connection is logged")
def _():
    with Server(global_opts=("--log-level", "debug")) as srv:
        c = srv.connect()
        c.sendall(b"hello, eddy\n")
        assert recv_all(c, 12) == b"hello, eddy\n"
        c.close()
        rc, err = srv.stop()
        assert rc == 0, (rc, err)
        assert "connection from 127.0.0.1" in err, err


@case("at the default level connections are not logged: a flood is not a log flood")
def _():
    with Server() as srv:
        for _ in range(50):
            c = srv.connect()
            c.sendall(b"x")
            assert recv_all(c, 1) == b"x"
            c.close()
        rc, err = srv.stop()
        assert rc == 0, (rc, err)
        assert "connection from" not in err and " closed" not in err, err
        assert len(err.splitlines()) < 10, err


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


@case("with --log-level error nothing is logged and echoing works the same")
def _():
    with _Server(EDDY, "echo", global_opts=("--log-level", "error")) as srv:
        c = srv.connect()
        c.sendall(b"quiet")
        assert recv_all(c, 5) == b"quiet"
        c.close()
        rc, err = srv.stop()
        assert rc == 0 and err == "", (rc, err)


@case("socat and nc as clients get their bytes back")
def _():
    with Server() as srv:
        p = subprocess.run(["socat", "-t", "5", "-", f"TCP:127.0.0.1:{srv.port}"],
                           input=b"via socat\n", capture_output=True, timeout=20)
        assert p.stdout == b"via socat\n", (p.returncode, p.stdout, p.stderr)
        # nc half-closes after its input (-N) and waits for the echo.
        p = subprocess.run(["nc", "-N", "127.0.0.1", str(srv.port)],
                           input=b"via nc\n", capture_output=True, timeout=20)
        assert p.stdout == b"via nc\n", (p.returncode, p.stdout, p.stderr)


@case("10,000 concurrent connections are all served")
def _():
    import resource
    import selectors
    n = 10000
    resource.setrlimit(resource.RLIMIT_NOFILE, (n + 1000, n + 1000))
    with Server(nofile=n + 1000) as srv:
        clients = []
        deadline = time.time() + 60
        for i in range(n):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", srv.port))
            clients.append(s)
        sel = selectors.DefaultSelector()
        pending = {}
        for i, s in enumerate(clients):
            sel.register(s, selectors.EVENT_WRITE, i)
        # Each client writes its number once connected, then reads it back.
        done = 0
        while done < n and time.time() < deadline:
            for key, ev in sel.select(timeout=1):
                s, i = key.fileobj, key.data
                if ev & selectors.EVENT_WRITE:
                    s.send(f"{i}\n".encode())
                    sel.modify(s, selectors.EVENT_READ, i)
                else:
                    pending[i] = pending.get(i, b"") + s.recv(64)
                    if pending[i].endswith(b"\n"):
                        assert pending[i] == f"{i}\n".encode(), (i, pending[i])
                        sel.unregister(s)
                        done += 1
        for s in clients:
            s.close()
        assert done == n, f"only {done} of {n} echoed"


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
        # The signal has been acted on: the server is in its grace time.
        assert srv.wait_log("no longer accepting"), srv.stderr()
        c.sendall(b"still here")
        assert recv_all(c, 10) == b"still here"
        t0 = time.time()
        c.close()
        rc, err = srv.stop(signal_it=False)
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


report()
