#!/usr/bin/env python3
"""`eddy chat` through every door it has, with real clients: nc-style line
clients on sockets, POST /send and GET /poll through http.client, `curl -N`
for server-sent events (Last-Event-ID resumption included), and Python's
websockets client on /ws. A message sent through any transport reaches the
clients of every other; hostile input (bad JSON, oversize fields, bad
UTF-8, control characters, markup) is refused or carried as plain text,
and the server keeps serving.

Usage: test_chat_app.py PATH_TO_EDDY. Ends with "passed=P failed=F[
skipped=S]". Every wait is bounded and waits for its condition.
"""
import asyncio
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Server, case, cert, free_port, report, skipping  # noqa: E402

try:
    import websockets
except ImportError:  # Debian's python3-websockets, seen from another python3
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        import websockets
    except ImportError:
        websockets = None

EDDY = sys.argv[1]


SANITIZER = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")


class Chat(Server):
    """eddy chat on a free port, with a line endpoint on another (its port
    in .line_port). Leaving the block stops it with SIGTERM and fails the
    case if it did not exit 0 or a sanitizer spoke."""

    def __init__(self, *extra):
        self.line_port = free_port()
        super().__init__(EDDY, "chat", "--line", f"tcp:{self.line_port}:interface=127.0.0.1",
                         *extra)
        # The web port answers first: the line one is opened after it.
        if not self.wait_log(f"listening on 127.0.0.1:{self.line_port}"):
            log = self.stderr()
            super().__exit__(None, None, None)  # kills it
            raise AssertionError("no line listener: " + log)

    def __exit__(self, *exc):
        try:
            if exc[0] is None and self.p.poll() is None:
                rc, log = self.stop()
                assert rc == 0, f"eddy chat exited {rc}: {log[-2000:]}"
            log = self.stderr()
            assert not SANITIZER.search(log), log[-4000:]
        finally:
            super().__exit__(*exc)


def chat(*extra):
    return Chat(*extra)


# ---- Clients -------------------------------------------------------------------------


class Line:
    """An nc-style client: sends its name as its first line."""

    def __init__(self, srv, name, wait_join=True):
        self.s = socket.create_connection(("127.0.0.1", srv.line_port), timeout=10)
        self.buf = b""
        self.name = name
        if name is not None:
            self.send(name)
            if wait_join:
                assert srv.wait_log(f"chat: {name} joined"), srv.stderr()

    def send(self, line):
        self.s.sendall((line.encode() if isinstance(line, str) else line) + b"\n")

    def readline(self, timeout=10):
        deadline = time.time() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError(f"{self.name}: no line within {timeout} s: {self.buf!r}")
            self.s.settimeout(left)
            chunk = self.s.recv(65536)
            if not chunk:
                raise AssertionError(f"{self.name}: EOF instead of a line: {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def nothing_within(self, seconds):
        """True if no byte arrives for that long (a bounded wait that
        proves an absence)."""
        if self.buf:
            return False
        r, _, _ = select.select([self.s], [], [], seconds)
        return not r

    def close(self):
        self.s.close()


def request(port, method, path, body=None, headers=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheader("Content-Type"), data


def send(port, name, text):
    st, _, body = request(port, "POST", "/send", json.dumps({"name": name, "text": text}),
                       {"Content-Type": "application/json"})
    assert st == 204, (st, body)


def poll(port, since, timeout=30):
    st, ctype, body = request(port, "GET", f"/poll?since={since}", timeout=timeout)
    assert st == 200 and ctype == "application/json", (st, ctype, body)
    return json.loads(body)


def last_id(port):
    """The newest message's id: posts one and reads it back."""
    send(port, "probe", "what is the last id?")
    msgs = poll(port, 0)
    assert msgs and msgs[-1]["text"] == "what is the last id?", msgs
    return msgs[-1]["id"]


class Poller:
    """A long-poll in a thread: .result once answered."""

    def __init__(self, port, since):
        self.result = None
        self.error = None
        self.t = threading.Thread(target=self._run, args=(port, since), daemon=True)
        self.t.start()

    def _run(self, port, since):
        try:
            self.result = poll(port, since)
        except Exception as e:  # reported by wait()
            self.error = e

    def wait(self, timeout=10):
        self.t.join(timeout)
        if self.t.is_alive():
            raise AssertionError(f"the poll was not answered within {timeout} s")
        if self.error:
            raise self.error
        return self.result


class Sse:
    """`curl -N` on /events; each event's fields as a dict."""

    def __init__(self, port, last_event_id=None):
        args = ["curl", "-sN", "--max-time", "60", f"http://127.0.0.1:{port}/events"]
        if last_event_id is not None:
            args += ["-H", f"Last-Event-ID: {last_event_id}"]
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE)
        self.buf = b""
        # The stream starts with its retry field: from then on it is
        # subscribed.
        first = self.block()
        assert "retry" in first, first

    def block(self, timeout=10):
        deadline = time.time() + timeout
        while b"\n\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError(f"no SSE event within {timeout} s: {self.buf!r}")
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if r:
                chunk = os.read(self.p.stdout.fileno(), 65536)
                if not chunk:
                    raise AssertionError(f"the SSE stream ended: {self.buf!r}")
                self.buf += chunk
        block, self.buf = self.buf.split(b"\n\n", 1)
        fields = {}
        for line in block.decode().split("\n"):
            if line.startswith(":"):
                continue
            k, _, v = line.partition(":")
            fields[k] = v[1:] if v.startswith(" ") else v
        return fields

    def message(self, timeout=10):
        """The next event that carries data, as (id, the decoded object)."""
        deadline = time.time() + timeout
        while True:
            ev = self.block(max(0.01, deadline - time.time()))
            if "data" in ev:
                return int(ev["id"]), json.loads(ev["data"])

    def close(self):
        self.p.kill()
        self.p.wait()


LOOP = None
if websockets:
    LOOP = asyncio.new_event_loop()
    threading.Thread(target=LOOP.run_forever, daemon=True).start()


def run(coro, timeout=20):
    return asyncio.run_coroutine_threadsafe(coro, LOOP).result(timeout)


class Ws:
    """Python's websockets client on /ws, driven from this thread."""

    def __init__(self, port, scheme="ws", ssl_ctx=None, host="127.0.0.1"):
        async def connect():
            return await websockets.connect(f"{scheme}://{host}:{port}/ws", open_timeout=10,
                                            ssl=ssl_ctx, close_timeout=5)
        self.ws = run(connect())

    def send(self, obj):
        run(self.ws.send(obj if isinstance(obj, (str, bytes)) else json.dumps(obj)))

    def recv(self, timeout=10):
        data = run(asyncio.wait_for(self.ws.recv(), timeout), timeout + 5)
        assert isinstance(data, str), data
        return json.loads(data)

    def message(self, text, timeout=10):
        """Receives until the message with that text; returns it."""
        deadline = time.time() + timeout
        while True:
            m = self.recv(max(0.01, deadline - time.time()))
            if m.get("text") == text:
                return m

    def close(self):
        run(self.ws.close())


# ---- The page ------------------------------------------------------------------------


@case("the page, its stylesheet and its script are served from the binary")
def _():
    with chat() as srv:
        st, ctype, body = request(srv.port, "GET", "/")
        assert st == 200 and ctype.startswith("text/html"), (st, ctype)
        assert b'src="chat.js"' in body and b'href="chat.css"' in body, body[:200]
        st, ctype, body = request(srv.port, "GET", "/chat.js")
        assert st == 200 and ctype.startswith("text/javascript") and b"textContent" in body
        assert b"innerHTML" not in body, "the page must never build HTML from strings"
        st, ctype, _ = request(srv.port, "GET", "/chat.css")
        assert st == 200 and ctype.startswith("text/css"), ctype
        assert request(srv.port, "GET", "/nothing-here")[0] == 404
        assert request(srv.port, "DELETE", "/send")[0] == 405


# ---- POST /send and GET /poll ---------------------------------------------------------


@case("POST /send: 204, and /poll gives the message back with an increasing id and a time")
def _():
    with chat() as srv:
        before = time.time() * 1000
        send(srv.port, "alice", "hello")
        send(srv.port, "bob", "hi alice")
        msgs = poll(srv.port, 0)
        assert [(m["name"], m["text"]) for m in msgs] == [("alice", "hello"), ("bob", "hi alice")]
        assert msgs[1]["id"] == msgs[0]["id"] + 1, msgs
        assert before - 1000 <= msgs[0]["time"] <= time.time() * 1000 + 1000, msgs
        assert set(msgs[0]) == {"id", "time", "name", "text"}, msgs
        assert poll(srv.port, msgs[0]["id"]) == msgs[1:]


@case("a text with <script> arrives as text inside JSON, never as markup")
def _():
    with chat() as srv:
        evil = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'
        send(srv.port, "<b>mallory</b>", evil)
        st, ctype, body = request(srv.port, "GET", "/poll?since=0")
        assert ctype == "application/json", ctype
        m = json.loads(body)[-1]
        assert m["text"] == evil and m["name"] == "<b>mallory</b>", m


@case("a long-poll is held until a message arrives, then answered with it")
def _():
    with chat() as srv:
        since = last_id(srv.port)
        p = Poller(srv.port, since)
        p.t.join(0.5)
        assert p.t.is_alive(), f"answered at once: {p.result}"
        line = Line(srv, "carol")
        line.send("anyone polling?")
        msgs = p.wait()
        assert [(m["name"], m["text"]) for m in msgs] == [("carol", "anyone polling?")], msgs
        assert msgs[0]["id"] == since + 1
        line.close()


@case("bad requests are refused with 400 and a JSON reason; the server keeps serving")
def _():
    bad = [
        b"",
        b"{",
        b"not json",
        b'["name", "text"]',
        b'{"name": "a"}',
        b'{"name": 1, "text": "x"}',
        b'{"name": "a", "text": "x", "text": "y"}',
        json.dumps({"name": "", "text": "x"}).encode(),
        json.dumps({"name": "a", "text": ""}).encode(),
        json.dumps({"name": "n" * 33, "text": "x"}).encode(),
        json.dumps({"name": "a", "text": "t" * 1001}).encode(),
        json.dumps({"name": "a", "text": "\u00e9" * 501}).encode(),  # 1002 bytes
        json.dumps({"name": "a", "text": "bell\u0007"}).encode(),
        json.dumps({"name": "a", "text": "two\nlines"}).encode(),
        json.dumps({"name": "a\u0085", "text": "C1 control"}).encode(),
        json.dumps({"name": "a", "text": "nul\u0000"}).encode(),
        b'{"name": "a", "text": "\xff\xfe"}',
        b'{"name": "a", "text": "\xc0\xaf"}',
        b'{"name": "a", "text": "\\ud800"}',
        b"\xff\xfe{",  # jansson's reasons quote the input: never raw bytes back
        b'{"a": tru\xc3',
        b'{"n\x01": 1}',
        b"[" * 5000,
    ]
    with chat() as srv:
        for body in bad:
            st, ctype, answer = request(srv.port, "POST", "/send", body,
                                     {"Content-Type": "application/json"})
            assert st == 400 and ctype == "application/json", (body, st, answer)
            assert isinstance(json.loads(answer).get("error"), str), answer
        st, _, answer = request(srv.port, "POST", "/send",
                             json.dumps({"name": "a", "text": "t" * 1001}))
        assert b"1000 bytes" in answer, answer
        assert request(srv.port, "GET", "/poll?since=x")[0] == 400
        assert request(srv.port, "GET", "/poll?since=99999999999999999999")[0] == 400
        # The limits themselves pass.
        send(srv.port, "n" * 32, "\u00e9" * 500)
        assert poll(srv.port, 0)[-1]["name"] == "n" * 32
        assert srv.p.poll() is None


# ---- Line clients --------------------------------------------------------------------


@case("line clients: the first line is a name; others get 'name: text', the sender does not")
def _():
    with chat() as srv:
        a, b = Line(srv, "alice"), Line(srv, "bob")
        a.send("hello bob")
        assert b.readline() == "alice: hello bob"
        b.send("hi alice\r")  # telnet's CRLF
        assert a.readline() == "bob: hi alice"
        assert a.nothing_within(0.3), a.buf
        a.close()
        b.close()


@case("line clients: a bad name, an over-long line, bad UTF-8 get 'error: ...' and the client goes on")
def _():
    with chat() as srv:
        listener = Line(srv, "listener")
        c = Line(srv, None)
        c.send("x" * 40)
        assert c.readline() == "error: name is longer than 32 bytes"
        c.send(b"\xff")
        assert c.readline() == "error: name is not valid UTF-8"
        c.send("dave")
        assert srv.wait_log("chat: dave joined")
        c.send("y" * 1001)
        assert c.readline() == "error: text is longer than 1000 bytes"
        c.send("z" * 10000)  # past the line reader's limit
        assert c.readline() == "error: text is longer than 1000 bytes"
        c.send(b"caf\xc3")
        assert c.readline() == "error: text is not valid UTF-8"
        c.send(b"tab\there")
        assert c.readline() == "error: text has a control character"
        c.send("still here")
        assert listener.readline() == "dave: still here"
        c.close()
        listener.close()


@case("--idle-timeout bounds the wait for a line client's name, not a named member's silence")
def _():
    with chat("--idle-timeout", "1") as srv:
        nameless = socket.create_connection(("127.0.0.1", srv.line_port), timeout=10)
        member = Line(srv, "quiet")
        t0 = time.time()
        assert nameless.recv(100) == b"" and time.time() - t0 < 5  # closed for idling
        assert member.nothing_within(1.5)  # longer than the timeout: still there
        send(srv.port, "someone", "still with us?")
        assert member.readline() == "someone: still with us?"
        nameless.close()
        member.close()


@case("a line client that never reads is cut off; the others keep getting messages")
def _():
    with chat() as srv:
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(("127.0.0.1", srv.line_port))
        stuck.sendall(b"stuck\n")
        assert srv.wait_log("chat: stuck joined")
        reader, flood = Line(srv, "reader"), Line(srv, "flood")
        text = "m" * 990
        # 6 MB: past the 1 MiB bound and whatever the kernel's buffers hold.
        for i in range(6000):
            flood.send(f"{i:04d} {text}")
            if i % 100 == 99:  # the reader keeps up
                while not reader.readline().startswith(f"flood: {i:04d} "):
                    pass
        assert srv.wait_log("stuck cannot keep up"), srv.stderr()[-500:]
        flood.send("after")
        while reader.readline() != "flood: after":
            pass
        for c in (stuck, flood, reader):
            c.close()


@case("a WebSocket and an SSE client that never read are cut off; a line client keeps up")
def _():
    with chat() as srv:
        stuck_ws = socket.socket()
        stuck_ws.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck_ws.connect(("127.0.0.1", srv.port))
        stuck_ws.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        stuck_ws.settimeout(10)
        assert stuck_ws.recv(4096).startswith(b"HTTP/1.1 101"), "no upgrade"
        stuck_sse = socket.socket()
        stuck_sse.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck_sse.connect(("127.0.0.1", srv.port))
        stuck_sse.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        stuck_sse.settimeout(10)
        assert stuck_sse.recv(4096).startswith(b"HTTP/1.1 200"), "no event stream"
        reader, flood = Line(srv, "reader"), Line(srv, "flood")
        text = "w" * 990
        for i in range(6000):
            flood.send(f"{i:04d} {text}")
            if i % 100 == 99:
                while not reader.readline().startswith(f"flood: {i:04d} "):
                    pass
        assert srv.wait_log("a WebSocket client cannot keep up"), srv.stderr()[-500:]
        assert srv.wait_log("an SSE client cannot keep up"), srv.stderr()[-500:]

        def cut_off(s):  # read what the kernel holds until the server's end
            deadline = time.time() + 20
            try:
                while time.time() < deadline:
                    if not s.recv(1 << 20):
                        return True
            except ConnectionResetError:
                return True
            return False
        assert cut_off(stuck_ws) and cut_off(stuck_sse)
        flood.send("after")
        while reader.readline() != "flood: after":
            pass
        for c in (stuck_ws, stuck_sse, flood, reader):
            c.close()


# ---- Server-sent events ------------------------------------------------------------


@case("curl -N on /events: each message is an event with an id; Last-Event-ID resumes after it")
def _():
    with chat() as srv:
        ev = Sse(srv.port)
        send(srv.port, "erin", "one")
        id1, m1 = ev.message()
        assert m1["text"] == "one" and m1["id"] == id1, (id1, m1)
        send(srv.port, "erin", "two")
        send(srv.port, "erin", "three")
        id2, m2 = ev.message()
        id3, m3 = ev.message()
        assert (m2["text"], m3["text"]) == ("two", "three") and id3 == id2 + 1 == id1 + 2
        ev.close()
        # A reconnection after "one" gets "two" and "three" at once.
        again = Sse(srv.port, last_event_id=id1)
        assert [again.message()[1]["text"] for _ in range(2)] == ["two", "three"]
        send(srv.port, "erin", "four")
        assert again.message()[1]["text"] == "four"
        again.close()
        # A Last-Event-ID that is not ours starts from now.
        fresh = Sse(srv.port, last_event_id="garbage")
        send(srv.port, "erin", "five")
        assert fresh.message()[1]["text"] == "five"
        fresh.close()


# ---- WebSocket -----------------------------------------------------------------------


with skipping(None if websockets else "python3-websockets is not installed"):

    @case("WebSocket: a JSON message sent on /ws reaches a line client, and the reverse")
    def _():
        with chat() as srv:
            line = Line(srv, "frank")
            ws = Ws(srv.port)
            ws.send({"name": "gina", "text": "from the web"})
            assert line.readline() == "gina: from the web"
            m = ws.message("from the web")  # the sender's own copy, with id and time
            assert m["name"] == "gina" and isinstance(m["id"], int) and isinstance(m["time"], int)
            line.send("from the terminal")
            m = ws.message("from the terminal")
            assert m["name"] == "frank", m
            ws.close()
            line.close()

    @case("WebSocket: bad JSON, binary, oversize text get {\"error\"} and the socket stays open; past 16 KiB: 1009")
    def _():
        with chat() as srv:
            ws = Ws(srv.port)
            for bad in ["{", "[]", json.dumps({"name": "a", "text": "t" * 1001}),
                        json.dumps({"name": "a\u0001", "text": "x"})]:
                ws.send(bad)
                answer = ws.recv()
                assert isinstance(answer.get("error"), str), (bad, answer)
            ws.send(b'{"name": "a", "text": "binary"}')
            assert "binary" in ws.recv()["error"]
            ws.send({"name": "a", "text": "fine"})
            assert ws.message("fine")["name"] == "a"
            ws.close()
            # Past 16 KiB a message cannot be a valid one: 1009, unread.
            big = Ws(srv.port)
            big.send(json.dumps({"name": "a", "text": "t" * 20000}))
            run(big.ws.wait_closed())
            assert big.ws.close_code == 1009, big.ws.close_code
            assert srv.p.poll() is None

    @case("cross-transport: line, WebSocket, SSE, long-poll and POST all see each other's messages")
    def _():
        with chat() as srv:
            line = Line(srv, "liam")
            ws = Ws(srv.port)
            ev = Sse(srv.port)
            since = last_id(srv.port)
            assert ev.message()[1]["text"] == "what is the last id?"
            ws.message("what is the last id?")
            assert line.readline() == "probe: what is the last id?"

            p = Poller(srv.port, since)
            line.send("from line")
            assert ws.message("from line")["name"] == "liam"
            assert ev.message()[1]["text"] == "from line"
            assert [m["text"] for m in p.wait()] == ["from line"]

            p = Poller(srv.port, since + 1)
            ws.send({"name": "wendy", "text": "from ws"})
            assert line.readline() == "wendy: from ws"
            assert ev.message()[1] == ws.message("from ws")
            assert [m["text"] for m in p.wait()] == ["from ws"]

            p = Poller(srv.port, since + 2)
            send(srv.port, "paul", "from post")
            assert line.readline() == "paul: from post"
            assert ws.message("from post")["name"] == "paul"
            assert ev.message()[1]["text"] == "from post"
            assert [m["text"] for m in p.wait()] == ["from post"]
            ws.close()
            ev.close()
            line.close()

    @case("HTTPS on a tls: endpoint: the page, POST /send and wss:// /ws")
    def _():
        port = free_port()
        listen = (f"tls:{port}:certKey={cert('server.pem')}:privateKey={cert('server.key')}"
                  ":interface=127.0.0.1")
        with chat("--listen", listen):  # the line listener, opened last, is up
            ctx = ssl.create_default_context(cafile=cert("ca.pem"))
            c = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=10)
            c.request("GET", "/")
            r = c.getresponse()
            assert r.status == 200 and b"chat.js" in r.read()
            ws = Ws(port, "wss", ctx, "localhost")
            c.request("POST", "/send", json.dumps({"name": "tess", "text": "secure"}))
            r = c.getresponse()
            assert r.status == 204, r.status
            r.read()
            assert ws.message("secure")["name"] == "tess"
            ws.close()
            c.close()


@case("other endpoints: line clients over TLS (tls:), the web side on a unix: socket")
def _():
    d = tempfile.mkdtemp(prefix="eddy-chat-")
    path = os.path.join(d, "web.sock")
    tls_port = free_port()
    line_tls = (f"tls:{tls_port}:certKey={cert('server.pem')}:privateKey={cert('server.key')}"
                ":interface=127.0.0.1")
    with Server(EDDY, "chat", "--line", line_tls, listen=f"unix:{path}", probe=path) as srv:
        assert srv.wait_log(f"listening on 127.0.0.1:{tls_port}"), srv.stderr()
        ctx = ssl.create_default_context(cafile=cert("ca.pem"))
        raw = socket.create_connection(("127.0.0.1", tls_port), timeout=10)
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        s.sendall(b"secret agent\n")
        assert srv.wait_log("chat: secret agent joined"), srv.stderr()
        web = socket.socket(socket.AF_UNIX)
        web.settimeout(10)
        web.connect(path)
        body = json.dumps({"name": "unix", "text": "over a socket file"}).encode()
        web.sendall(b"POST /send HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(body), body))
        assert web.recv(4096).startswith(b"HTTP/1.1 204"), "no 204"
        got = b""
        while b"\n" not in got:
            chunk = s.recv(4096)
            assert chunk, got
            got += chunk
        assert got == b"unix: over a socket file\n", got
        s.close()
        web.close()
    shutil.rmtree(d, ignore_errors=True)


# ---- Stopping and usage ------------------------------------------------------------------


@case("SIGTERM: streams end, polls are answered, line clients are told, WebSockets closed 1001; exit 0")
def _():
    with chat() as srv:
        line, line2 = Line(srv, "olga"), Line(srv, "oleg")
        ws = Ws(srv.port) if websockets else None
        ws2 = Ws(srv.port) if websockets else None
        ev = Sse(srv.port)
        since = last_id(srv.port)
        assert line.readline() == "probe: what is the last id?"
        assert line2.readline() == "probe: what is the last id?"
        p = Poller(srv.port, since)
        p.t.join(0.3)
        assert p.t.is_alive(), p.result
        t0 = time.time()
        rc, log = srv.stop()
        assert rc == 0 and time.time() - t0 < 5, (rc, log)
        assert p.wait() == []
        assert line.readline() == "error: the server is stopping"
        assert line2.readline() == "error: the server is stopping"
        rc = ev.p.wait(timeout=10)
        assert rc == 0, f"curl exited {rc}: the stream did not end cleanly"
        for w in (ws, ws2) if ws else ():
            run(w.ws.wait_closed())
            assert w.ws.close_code == 1001, (w.ws.close_code, w.ws.close_reason)
        line.close()


@case("allocations failing at random (a test build's fault table): the room never crashes")
def _():
    # Clients may be refused or dropped; the server must answer whoever
    # it can, stop on SIGTERM, and leave no sanitizer report.
    chaos = 0
    for seed in range(1, 13):
        if chaos == 3:
            break
        os.environ["EDDY_FAULTS"] = f"malloc:ENOMEM:p=0.02,calloc:ENOMEM:p=0.02,seed={seed}"
        try:
            srv = Chat()
        except AssertionError:
            continue  # failed to start for want of memory: a clean exit
        finally:
            del os.environ["EDDY_FAULTS"]
        chaos += 1
        with srv:
            clients = []
            for i in range(40):
                try:
                    if i % 4 == 0:
                        s = socket.create_connection(("127.0.0.1", srv.line_port), timeout=5)
                        s.sendall(f"line{i}\nhello {i}\n".encode())
                        clients.append(s)
                    elif i % 4 == 1 and websockets:
                        w = Ws(srv.port)
                        w.send({"name": f"ws{i}", "text": f"hello {i}"})
                        clients.append(w)
                    elif i % 4 == 2:
                        request(srv.port, "POST", "/send",
                                json.dumps({"name": f"post{i}", "text": "x" * i}), timeout=5)
                    else:
                        request(srv.port, "GET", "/poll?since=0", timeout=5)
                except Exception:  # refused or dropped for want of memory
                    pass
            assert srv.p.poll() is None, srv.stderr()[-2000:]
            for c in clients:
                try:
                    c.close()
                except Exception:
                    pass
            rc, log = srv.stop()
            assert rc in (0, 1) and not SANITIZER.search(log), (rc, log[-3000:])
    assert chaos > 0, "the server never started under the fault table"


# ---- The IRC side (--irc) -----------------------------------------------------------


class Irc:
    """A raw IRC client on the chat's --irc port, registered, in #chat."""

    def __init__(self, port, nick):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.nick = nick
        self.send(f"NICK {nick}")
        self.send(f"USER {nick} 0 * :{nick}")
        self.expect(lambda line: f" 001 {nick} " in line)
        self.send("JOIN #chat")
        self.expect(lambda line: f" 366 {nick} #chat " in line)

    def send(self, line):
        self.s.sendall((line.encode() if isinstance(line, str) else line) + b"\r\n")

    def readline(self, timeout=10):
        deadline = time.time() + timeout
        while b"\r\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError(f"{self.nick}: no line within {timeout} s: {self.buf!r}")
            self.s.settimeout(left)
            chunk = self.s.recv(65536)
            if not chunk:
                raise AssertionError(f"{self.nick}: EOF instead of a line: {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def expect(self, pred, timeout=10):
        """Reads lines until one satisfies pred; returns it."""
        deadline = time.time() + timeout
        seen = []
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError(f"{self.nick}: nothing matched in {timeout} s: {seen}")
            line = self.readline(left)
            seen.append(line)
            if line.startswith("PING "):
                self.send("PONG " + line[5:])
            if pred(line):
                return line

    def close(self):
        self.s.close()


def irc_chat():
    irc_port = free_port()
    srv = Chat("--irc", f"tcp:{irc_port}:interface=127.0.0.1")
    srv.irc_port = irc_port
    if not srv.wait_log(f"listening on 127.0.0.1:{irc_port}"):
        srv.__exit__(None, None, None)
        raise AssertionError("no IRC listener: " + srv.stderr())
    return srv


@case("--irc: a browser (WebSocket), a line client and an IRC client in #chat see each other")
def _():
    if websockets is None:
        raise AssertionError("python3-websockets is not installed (scripts/deps.sh installs it)")
    with irc_chat() as srv:
        irc = Irc(srv.irc_port, "ircer")
        line = Line(srv, "liner")
        ws = Ws(srv.port)
        ws.send({"name": "browser", "text": "hello from the browser"})
        got = irc.expect(lambda x: "PRIVMSG #chat :hello from the browser" in x)
        assert got.startswith(":browser!web@"), got
        assert line.readline() == "browser: hello from the browser"
        line.send("hello from the line")
        got = irc.expect(lambda x: "PRIVMSG #chat :hello from the line" in x)
        assert got.startswith(":liner!web@"), got
        assert ws.message("hello from the line")["name"] == "liner"
        irc.send("PRIVMSG #chat :hello from \x02IRC\x02")
        m = ws.message("hello from IRC")
        assert m["name"] == "ircer", m
        assert line.readline() == "ircer: hello from IRC"
        # IRC's own echo rule: the sender does not get its message back.
        irc.send("PING :mark")
        assert "hello from IRC" not in irc.expect(lambda x: " PONG " in x and x.endswith(":mark"))
        ws.close()
        line.close()
        irc.close()


@case("--irc: a long web message reaches IRC whole over several lines; a NOTICE or another channel stays on IRC")
def _():
    with irc_chat() as srv:
        irc = Irc(srv.irc_port, "reader")
        other = Irc(srv.irc_port, "talker")
        text = "é" * 400 + "!"  # 801 bytes: over one IRC line
        send(srv.port, "long", text)
        pieces = []
        while "".join(pieces) != text:
            got = irc.expect(lambda x: " PRIVMSG #chat :" in x)
            assert got.startswith(":long!web@"), got
            assert len(got.encode()) + 2 <= 512, len(got.encode())
            pieces.append(got.split(" PRIVMSG #chat :", 1)[1])
            assert len(pieces) <= 3 and text.startswith("".join(pieces)), pieces
        assert len(pieces) == 2, pieces
        first = last_id(srv.port)
        other.send("NOTICE #chat :a notice")
        other.send("JOIN #elsewhere")
        other.send("PRIVMSG #elsewhere :not for the room")
        other.send("PRIVMSG #chat :for the room")
        irc.expect(lambda x: x.endswith("PRIVMSG #chat :for the room"))
        msgs = poll(srv.port, first)
        assert [(m["name"], m["text"]) for m in msgs] == [("talker", "for the room")], msgs
        irc.close()
        other.close()


@case("--irc: SIGTERM sends IRC clients an ERROR line, and chat exits 0")
def _():
    with irc_chat() as srv:
        irc = Irc(srv.irc_port, "stayer")
        srv.p.send_signal(signal.SIGTERM)
        irc.expect(lambda x: x.startswith("ERROR :"))
        rc, log = srv.stop(signal_it=False)
        assert rc == 0, log[-2000:]
        irc.close()


@case("bad usage: no --listen, an empty --line, an unknown option exit 2")
def _():
    for args, text in [([], b"--listen"), (["--line", ""], b"--line"),
                       (["--listen", "tcp:0", "--bogus"], b"unknown option"),
                       (["--line", "tcp:0"], b"--listen")]:
        p = subprocess.run([EDDY, "chat", *args], capture_output=True, timeout=10)
        assert p.returncode == 2 and text in p.stderr, (args, p.stderr)
    p = subprocess.run([EDDY, "chat", "--help"], capture_output=True, timeout=10)
    assert p.returncode == 0 and b"--line" in p.stdout


report()
