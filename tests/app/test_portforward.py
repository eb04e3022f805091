#!/usr/bin/env python3
"""`eddy portforward` between real peers: an eddy echo target, Python
clients, a slow reader, a target that refuses.

Usage: test_portforward.py PATH_TO_EDDY. Ends with "passed=P failed=F".
"""
import os
import select
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Server, case, free_port, recv_all, report  # noqa: E402

EDDY = sys.argv[1]


def forward_to(port, *extra):
    return Server(EDDY, "portforward", "--connect", f"tcp:host=127.0.0.1:port={port}", *extra)


@case("bytes go through both ways and a half-close is passed on")
def _():
    with Server(EDDY, "echo") as echo, forward_to(echo.port) as pf:
        c = pf.connect()
        payload = os.urandom(4 * 1024 * 1024)
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
        got = recv_all(c, len(payload) + 1)
        assert got == payload, (len(got), len(payload))
        c.close()
        rc, err = pf.stop()
        assert rc == 0, (rc, err)


@case("1 GB into a reader that pauses: the relay's memory stays bounded")
def _():
    sink = socket.socket()
    sink.bind(("127.0.0.1", 0))
    sink.listen(1)
    port = sink.getsockname()[1]
    total = 1 << 30
    received = [0]
    # Set when the client can send no more: the relay has stopped reading
    # it because the stalled reader's side is full.
    backed_up = threading.Event()
    stalled = []

    def slow_reader():
        # The first connection is the start-up probe's, which sends nothing.
        sink.settimeout(60)
        while received[0] < total:
            conn, _ = sink.accept()
            if received[0] == 0 and not stalled:
                # A consumer that stalls first, until the relay is backed
                # up: every buffer between the client and here is full.
                stalled.append(backed_up.wait(timeout=60))
            while True:
                chunk = conn.recv(1 << 20)
                if not chunk:
                    break
                received[0] += len(chunk)
            conn.close()

    t = threading.Thread(target=slow_reader)
    t.start()
    with forward_to(port) as pf:
        before = pf.rss_kb()
        c = pf.connect()
        chunk = b"z" * (1 << 20)
        peak = 0
        deadline = time.time() + 120
        sent = 0
        c.setblocking(False)
        while sent < total and time.time() < deadline:
            view = memoryview(chunk)
            while view and time.time() < deadline:
                try:
                    view = view[c.send(view):]
                except BlockingIOError:
                    backed_up.set()
                    select.select([], [c], [], 1)
            sent += len(chunk) - len(view)
            if sent % (64 << 20) == 0:
                peak = max(peak, pf.rss_kb() - before)
        c.setblocking(True)
        c.shutdown(socket.SHUT_WR)
        t.join(timeout=120)
        c.close()
        assert stalled == [True], "the relay never backed up while the reader stalled"
        assert received[0] == total, (received[0], total)
        assert peak < 48 * 1024, f"relay memory grew by {peak} kB"
        rc, err = pf.stop()
        assert rc == 0, (rc, err)
    sink.close()


@case("a target that refuses: the client is closed promptly and it is logged")
def _():
    dead = free_port()
    with forward_to(dead) as pf:
        c = pf.connect()
        c.settimeout(5)
        t0 = time.time()
        assert c.recv(10) == b""
        assert time.time() - t0 < 3
        c.close()
        rc, err = pf.stop()
        assert rc == 0 and "refused" in err, (rc, err)


@case("a client that leaves while the target is being reached ends cleanly")
def _():
    with Server(EDDY, "echo") as echo, forward_to(echo.port) as pf:
        for _ in range(20):
            c = pf.connect()
            c.close()
        c = pf.connect()
        c.sendall(b"ok")
        assert recv_all(c, 2) == b"ok"
        c.close()
        rc, err = pf.stop()
        assert rc == 0, (rc, err)


@case("bad command lines exit 2 with a message")
def _():
    for args, fragment in [
        (["--listen", "tcp:0"], "--connect"),
        (["--listen", "tcp:0", "--connect"], "needs an endpoint"),
        (["--listen", "tcp:0", "--connect", "tcp:nohostport"], "--connect"),
        (["--connect", "tcp:host=a:port=1"], "--listen"),
    ]:
        p = subprocess.run([EDDY, "portforward", *args], capture_output=True, text=True, timeout=10)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
        assert fragment in p.stderr, (args, p.stderr)


report()
