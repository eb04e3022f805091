#!/usr/bin/env python3
"""eddy's WebSocket server (through examples/ws-echo) against a real peer,
Python's websockets client, and against raw frames a well-behaved client
would never send: fragmentation, ping/pong and keep-alive, every close code
path, invalid UTF-8 (1007), an unmasked client frame (1002), oversize
(1009), compression on and off, handshake refusals.

Usage: test_ws.py PATH_TO_WS_ECHO. Ends with "passed=P failed=F".
"""
import os
import sys

try:
    import websockets  # noqa: F401
except ImportError:
    # Debian's python3-websockets lives in the system interpreter.
    if os.path.exists("/usr/bin/python3") and sys.executable != "/usr/bin/python3":
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

import asyncio
import base64
import signal
import socket
import struct
import subprocess
import time
import zlib

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import case, free_port, report  # noqa: E402

ECHO = sys.argv[1]
T = 10  # every wait is bounded by this many seconds


class Echo:
    def __init__(self, *args):
        self.port = free_port()
        self.p = subprocess.Popen([ECHO, "--listen", f"tcp:{self.port}:interface=127.0.0.1", *args],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + T
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                self.url = f"ws://127.0.0.1:{self.port}/ws"
                return
            except OSError:
                if self.p.poll() is not None:
                    raise AssertionError("ws-echo exited: " + self.p.stderr.read().decode())
                time.sleep(0.05)
        raise AssertionError("ws-echo did not listen")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=T)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise AssertionError("ws-echo did not stop on SIGTERM")
        err = self.p.stderr.read().decode()
        assert rc == 0 and "ERROR" not in err and "runtime error" not in err, (rc, err)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, T))


# ---- Raw frames -------------------------------------------------------------

KEY = base64.b64encode(os.urandom(16)).decode()


def handshake(port, extra="", key=KEY, version="13"):
    """Sends a handshake request; returns (socket, status line, head, rest)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=T)
    req = (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           f"Connection: Upgrade\r\nSec-WebSocket-Version: {version}\r\n")
    if key is not None:
        req += f"Sec-WebSocket-Key: {key}\r\n"
    s.sendall((req + extra + "\r\n").encode())
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    head, _, rest = got.partition(b"\r\n\r\n")
    return s, head.split(b"\r\n")[0].decode(), head.decode(), rest


def frame(op, payload, fin=True, mask=True, rsv=0, length=None):
    b0 = (0x80 if fin else 0) | (rsv << 4) | op
    n = len(payload) if length is None else length
    m = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))


class Reader:
    def __init__(self, s, rest=b""):
        self.s, self.buf = s, rest

    def need(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame(self):
        b0, b1 = self.need(2)
        assert not b1 & 0x80, "a server frame was masked"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.need(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.need(8))[0]
        return b0 & 0x0F, self.need(n)

    def close_code(self):
        """Frames until a close frame: its code (None if it had none)."""
        while True:
            op, payload = self.frame()
            if op == 8:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None

    def closed(self):
        """The server ends the TCP connection after its close frame."""
        try:
            while self.s.recv(65536):
                pass
        except ConnectionResetError:
            pass
        return True


def raw_close(port, data, extra=""):
    """Sends data after the handshake; returns the close code the server sent."""
    s, status, _, rest = handshake(port, extra)
    assert status.startswith("HTTP/1.1 101"), status
    s.sendall(data)
    r = Reader(s, rest)
    code = r.close_code()
    r.closed()
    s.close()
    return code


# ---- The cases ---------------------------------------------------------------

print(f"websockets {websockets.__version__}", file=sys.stderr)

with Echo() as srv:
    @case("text and binary messages echo, compression off: no extension answered")
    def _():
        async def go():
            async with websockets.connect(srv.url, compression=None) as ws:
                assert ws.response_headers.get("Sec-WebSocket-Extensions") is None
                await ws.send("héllo wörld ✓")
                assert await ws.recv() == "héllo wörld ✓"
                await ws.send(b"\x00\xff" * 40000)
                assert await ws.recv() == b"\x00\xff" * 40000
                await ws.send("")
                assert await ws.recv() == ""
        run(go())

    @case("compression on: permessage-deflate with server_no_context_takeover, large and small messages")
    def _():
        async def go():
            async with websockets.connect(srv.url, compression="deflate") as ws:
                ext = ws.response_headers.get("Sec-WebSocket-Extensions")
                assert ext and "permessage-deflate" in ext and "server_no_context_takeover" in ext, ext
                for msg in ["x" * 100000, "tiny", "é" * 5000, ""]:
                    await ws.send(msg)
                    assert await ws.recv() == msg
                await ws.send(os.urandom(70000))  # incompressible
                assert len(await ws.recv()) == 70000
        run(go())

    @case("fragmented messages (text and binary) are reassembled")
    def _():
        async def go():
            async with websockets.connect(srv.url) as ws:
                await ws.send(["frag", "men", "ted ✓"])
                assert await ws.recv() == "fragmented ✓"
                await ws.send([b"a" * 70000, b"b", b"c" * 3])
                assert await ws.recv() == b"a" * 70000 + b"b" + b"ccc"
        run(go())

    @case("a fragmented message with a ping between its fragments")
    def _():
        s, status, _, rest = handshake(srv.port)
        s.sendall(frame(1, b"one ", fin=False) + frame(9, b"p!") + frame(0, b"two"))
        r = Reader(s, rest)
        assert r.frame() == (10, b"p!")
        assert r.frame() == (1, b"one two")
        s.close()

    @case("ping from the client is answered with a pong carrying its payload")
    def _():
        async def go():
            async with websockets.connect(srv.url) as ws:
                waiter = await ws.ping(b"payload")
                await asyncio.wait_for(waiter, T)
        run(go())

    @case("subprotocol: the first the server speaks among those offered")
    def _():
        async def go():
            async with websockets.connect(srv.url, subprotocols=["x", "chat", "echo"]) as ws:
                assert ws.subprotocol == "echo", ws.subprotocol
            async with websockets.connect(srv.url, subprotocols=["x"]) as ws:
                assert ws.subprotocol is None
        run(go())

    for code in (1000, 1001, 1003, 1008, 1011, 3000, 4999):
        @case(f"the server closes with {code} and a reason; the client sees both")
        def _(code=code):
            async def go():
                async with websockets.connect(srv.url) as ws:
                    await ws.send(f"close {code} reason {code}")
                    try:
                        await ws.recv()
                        raise AssertionError("no close")
                    except websockets.ConnectionClosed as e:
                        assert e.rcvd.code == code and e.rcvd.reason == f"reason {code}", e
            run(go())

    for code in (1000, 1001, 4000):
        @case(f"the client closes with {code}: the server answers the same code")
        def _(code=code):
            async def go():
                ws = await websockets.connect(srv.url)
                await ws.close(code, "bye")
                assert ws.close_code == code and ws.close_reason == "bye", (ws.close_code, ws.close_reason)
            run(go())

    @case("a close frame without a code is answered without a code")
    def _():
        assert raw_close(srv.port, frame(8, b"")) is None

    @case("invalid UTF-8 in a text message: 1007")
    def _():
        assert raw_close(srv.port, frame(1, b"ok \xff")) == 1007

    @case("invalid UTF-8 split across fragments fails at the fragment: 1007, before the message ends")
    def _():
        # A surrogate's first two bytes end the first fragment; the
        # message never ends, yet the server fails it.
        assert raw_close(srv.port, frame(1, b"abc\xed\xa0", fin=False)) == 1007

    @case("an overlong encoding: 1007")
    def _():
        assert raw_close(srv.port, frame(1, b"\xc0\xaf")) == 1007

    @case("invalid UTF-8 in a close reason: 1007")
    def _():
        assert raw_close(srv.port, frame(8, struct.pack("!H", 1000) + b"\xff")) == 1007

    @case("an unmasked client frame: 1002")
    def _():
        assert raw_close(srv.port, frame(1, b"hello", mask=False)) == 1002

    for name, data in [
        ("reserved bit RSV2", frame(1, b"x", rsv=2)),
        ("RSV1 without permessage-deflate", frame(1, b"x", rsv=4)),
        ("an unknown opcode", frame(3, b"x")),
        ("a control frame over 125 bytes", frame(9, b"p" * 126)),
        ("a fragmented ping", frame(9, b"p", fin=False)),
        ("a continuation without a message", frame(0, b"x")),
        ("a new message inside a fragmented one", frame(1, b"a", fin=False) + frame(1, b"b")),
        ("a 64-bit length with its top bit set", frame(2, b"", length=1 << 63)),
        ("a close frame of one byte", frame(8, b"\x03")),
        ("close code 1005 received", frame(8, struct.pack("!H", 1005))),
        ("close code 1006 received", frame(8, struct.pack("!H", 1006))),
        ("close code 1015 received", frame(8, struct.pack("!H", 1015))),
        ("close code 999 received", frame(8, struct.pack("!H", 999))),
        ("close code 5000 received", frame(8, struct.pack("!H", 5000))),
    ]:
        @case(f"{name}: 1002")
        def _(data=data):
            assert raw_close(srv.port, data) == 1002

    @case("a 50 MB compression bomb (50 KB on the wire) against the default 1 MiB limit: 1009")
    def _():
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        bomb = (c.compress(b"\0" * 50_000_000) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
        code = raw_close(srv.port, frame(2, bomb, rsv=4),
                         extra="Sec-WebSocket-Extensions: permessage-deflate\r\n")
        assert code == 1009, code

    @case("frames sent with the handshake request are read")
    def _():
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=T)
        s.sendall((f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n\r\n").encode()
                  + frame(1, b"early"))
        got = b""
        while b"\r\n\r\n" not in got:
            got += s.recv(4096)
        head, _, rest = got.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        assert Reader(s, rest).frame() == (1, b"early")
        s.close()

    @case("a client that drops the connection without closing leaves the server serving")
    def _():
        s, status, _, _ = handshake(srv.port)
        s.sendall(frame(1, b"half", fin=False))
        s.close()

        async def go():
            async with websockets.connect(srv.url) as ws:
                await ws.send("still here")
                assert await ws.recv() == "still here"
        run(go())

    @case("handshake refusals: no key 400, bad key 400, version 8: 426 with Sec-WebSocket-Version: 13, bad Origin 403")
    def _():
        s, status, _, _ = handshake(srv.port, key=None)
        assert status.startswith("HTTP/1.1 400"), status
        s.close()
        s, status, _, _ = handshake(srv.port, key="c2hvcnQ=")
        assert status.startswith("HTTP/1.1 400"), status
        s.close()
        s, status, head, _ = handshake(srv.port, version="8")
        assert status.startswith("HTTP/1.1 426") and "Sec-WebSocket-Version: 13" in head, head
        s.close()
        s, status, _, _ = handshake(srv.port, extra="Origin: http://evil.example\r\n")
        assert status.startswith("HTTP/1.1 403"), status
        s.close()
        s, status, _, _ = handshake(srv.port, extra="Origin: http://good.example\r\n")
        assert status.startswith("HTTP/1.1 101"), status
        s.close()

    @case("the accept key is SHA-1 of the key and the GUID")
    def _():
        import hashlib
        s, status, head, _ = handshake(srv.port)
        want = base64.b64encode(hashlib.sha1((KEY + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        assert f"Sec-WebSocket-Accept: {want}" in head, head
        s.close()

with Echo("--max-message", "1000") as srv:
    @case("a message over max_message: 1009 (uncompressed)")
    def _():
        async def go():
            async with websockets.connect(srv.url, compression=None) as ws:
                await ws.send("x" * 1000)
                assert await ws.recv() == "x" * 1000
                await ws.send("x" * 1001)
                try:
                    await ws.recv()
                    raise AssertionError("no close")
                except websockets.ConnectionClosed as e:
                    assert e.rcvd.code == 1009, e
        run(go())

    @case("fragments adding up past max_message: 1009")
    def _():
        assert raw_close(srv.port, frame(2, b"a" * 600, fin=False) + frame(0, b"b" * 600)) == 1009

    @case("a compression bomb: a small compressed frame inflating past max_message is 1009")
    def _():
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        small = (c.compress(b"\0" * 5000) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
        assert len(small) < 1000
        code = raw_close(srv.port, frame(2, small, rsv=4),
                         extra="Sec-WebSocket-Extensions: permessage-deflate\r\n")
        assert code == 1009, code

    @case("compression on, under the limit once inflated: echoed")
    def _():
        async def go():
            async with websockets.connect(srv.url, compression="deflate") as ws:
                await ws.send("y" * 1000)
                assert await ws.recv() == "y" * 1000
        run(go())

with Echo("--ping-interval", "100", "--pong-timeout", "300") as srv:
    @case("keep-alive: the server pings a quiet client; one that answers stays connected")
    def _():
        async def go():
            async with websockets.connect(srv.url, ping_interval=None) as ws:
                await asyncio.sleep(0.8)  # several intervals: pings answered by the library
                await ws.send("alive")
                assert await ws.recv() == "alive"
        run(go())

    @case("keep-alive: a client that never answers pings is disconnected after the pong timeout")
    def _():
        s, status, _, rest = handshake(srv.port)
        r = Reader(s, rest)
        start = time.time()
        op, _ = r.frame()
        assert op == 9, op  # the ping; never answered
        try:
            while True:
                r.frame()
        except (EOFError, ConnectionResetError):
            pass
        took = time.time() - start
        assert took < 5, took
        s.close()

with Echo("--close-timeout", "300") as srv:
    @case("the server's close is not answered: it ends the connection after close_timeout")
    def _():
        s, status, _, rest = handshake(srv.port)
        s.sendall(frame(1, b"close 1000"))
        r = Reader(s, rest)
        start = time.time()
        assert r.close_code() == 1000
        r.closed()  # never answered: the server gives up
        assert time.time() - start < 5
        s.close()

report()
