#!/usr/bin/env python3
"""eddy's HTTP server (through examples/hello-web) against real clients:
curl, Python's http.client, raw pipelined requests, a corpus of malformed
requests, and a slow client holding a head open while others are served.

Usage: test_http.py PATH_TO_HELLO_WEB. Ends with "passed=P failed=F".
"""
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import case, free_port, report  # noqa: E402

HELLO = sys.argv[1]


STATIC = tempfile.mkdtemp(prefix="eddy-hello-")
with open(os.path.join(STATIC, "note.txt"), "w") as f:
    f.write("static note\n")


class Web:
    def __init__(self):
        self.port = free_port()
        self.p = subprocess.Popen([HELLO, "--listen", f"tcp:{self.port}:interface=127.0.0.1",
                                   "--static", STATIC],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.p.poll() is not None:
                    raise AssertionError("hello-web exited: " + self.p.stderr.read().decode())
                time.sleep(0.05)
        raise AssertionError("hello-web did not listen")

    def raw(self, data, timeout=5):
        """Sends data on a new connection; returns all it gets until the
        server closes or timeout passes."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.sendall(data)
        got = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        except socket.timeout:
            pass
        s.close()
        return got

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise AssertionError("hello-web did not stop on SIGTERM")
        err = self.p.stderr.read().decode()
        assert rc == 0 and "ERROR" not in err, (rc, err)


@case("curl: GET, a parameter, a mounted application, a static directory, HEAD, 404 and 405")
def _():
    if shutil.which("curl") is None:
        raise AssertionError("curl is not installed (scripts/deps.sh installs it)")
    with Web() as w:
        url = f"http://127.0.0.1:{w.port}"
        out = subprocess.run(["curl", "-sS", "-i", url + "/"], capture_output=True,
                             timeout=10).stdout
        assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"\r\n\r\nHello, World!"), out
        out = subprocess.run(["curl", "-sS", url + "/hello/curl", url + "/api/time"],
                             capture_output=True, timeout=10).stdout
        assert out.startswith(b"Hello, curl!\n"), out
        out = subprocess.run(["curl", "-sS", "-I", url + "/"], capture_output=True,
                             timeout=10).stdout
        assert b"Content-Length: 13" in out and b"Hello" not in out, out
        codes = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} ",
                                url + "/nope", "-o", "/dev/null", "-X", "POST", url + "/"],
                               capture_output=True, timeout=10).stdout
        assert codes == b"404 405 ", codes
        out = subprocess.run(["curl", "-sS", url + "/static/note.txt"], capture_output=True,
                             timeout=10).stdout
        assert out == b"static note\n", out


@case("http.client: many requests on one kept-alive connection")
def _():
    with Web() as w:
        c = http.client.HTTPConnection("127.0.0.1", w.port, timeout=5)
        for i in range(100):
            c.request("GET", f"/hello/{i}")
            r = c.getresponse()
            assert r.status == 200 and r.read() == b"Hello, %d!\n" % i
        c.close()


@case("16 pipelined requests in one write: 16 answers, in order")
def _():
    with Web() as w:
        req = b"".join(b"GET /hello/%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(16))
        got = w.raw(req + b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        bodies = [b"Hello, %d!\n" % i for i in range(16)]
        at = 0
        for b in bodies:
            at = got.find(b, at)
            assert at >= 0, (b, got[:300])
        assert got.count(b"HTTP/1.1 200 OK") == 17, got.count(b"HTTP/1.1 200 OK")


MALFORMED = [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",                        # no Host
    b"GET / HTTP/9.9\r\nHost: t\r\n\r\n",
    b"GET /a#b HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n folded\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost : t\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"GET / HTTP/1.1\rHost: t\r\n\r\n",
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: t\r\n" + b"X-Long: " + b"b" * 40000 + b"\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: t\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(200)) + b"\r\n",
    b"\x00\x01\x02\xff\r\n\r\n",
]


@case("a corpus of malformed requests: each gets a 4xx or 5xx and a close; the server serves on")
def _():
    with Web() as w:
        for req in MALFORMED:
            got = w.raw(req)
            status = int(got[9:12]) if got.startswith(b"HTTP/1.1 ") else 0
            assert 400 <= status < 600, (req[:60], got[:100])
            assert b"Connection: close" in got, (req[:60], got[:200])
        assert w.raw(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").endswith(
            b"Hello, World!")


@case("a client that trickles its head in does not delay another one")
def _():
    with Web() as w:
        slow = socket.create_connection(("127.0.0.1", w.port), timeout=5)
        slow.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")
        for i in range(20):
            slow.sendall(b"X-%d: y\r\n" % i)
            t0 = time.time()
            c = http.client.HTTPConnection("127.0.0.1", w.port, timeout=5)
            c.request("GET", "/")
            assert c.getresponse().read() == b"Hello, World!"
            c.close()
            assert time.time() - t0 < 1, time.time() - t0
        slow.sendall(b"\r\n")
        slow.settimeout(5)
        assert slow.recv(65536).endswith(b"Hello, World!")
        slow.close()


shutil.rmtree(STATIC, ignore_errors=True)
report()
