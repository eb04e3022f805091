#!/usr/bin/env python3
"""The chat examples (examples/chat-*.c) against real clients over real
sockets: names, 50 clients, a slow client, clients that vanish in
mid-stream, an over-long line, signals, unix: and tls: endpoints, bad
usage. The same cases run against every program given, so the callback
and the coroutine servers are held to one behaviour.

Usage: test_chat.py PROGRAM...  A program that is not built has its cases
skipped, with the reason. Ends with "passed=P failed=F[ skipped=S]".

Besides the protocol, the cases read these lines of the server's log
(stderr): "NAME joined", "NAME cannot keep up", "NAME left[: REASON]".
Every wait is bounded and waits for its condition, never for a time.
"""
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Server, case, cert, free_port, report, skipping

SANITIZER = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")


def wait_for(pred, what, timeout=10):
    deadline = time.time() + timeout
    while not pred():
        if time.time() >= deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(0.01)


class Client:
    """A chat client on a blocking socket; every read has a deadline."""

    def __init__(self, srv, name=None, rcvbuf=None, path=None, tls=None):
        self.s = socket.socket(socket.AF_UNIX if path else socket.AF_INET)
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(10)
        self.s.connect(path or ("127.0.0.1", srv.port))
        if tls:
            self.s = tls.wrap_socket(self.s, server_hostname="localhost")
        self.name = name
        self.buf = b""
        if name is not None:
            self.send(name)

    def send(self, line):
        self.s.sendall(line.encode() + b"\n")

    def lines(self, n, timeout=10):
        """The next n lines, which must all come within timeout seconds."""
        deadline = time.time() + timeout
        while self.buf.count(b"\n") < n:
            left, have = deadline - time.time(), self.buf.count(b"\n")
            if left <= 0:
                raise AssertionError(f"{self.name} got {have} of {n} lines in {timeout} s")
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(1 << 20)
            except socket.timeout:
                continue
            if not chunk:
                raise AssertionError(f"{self.name}: the server closed after "
                                     f"{have} of {n} lines")
            self.buf += chunk
        parts = self.buf.split(b"\n", n)
        self.buf = parts[n]
        return [p.decode() for p in parts[:n]]

    def line(self, timeout=10):
        return self.lines(1, timeout)[0]

    def closed_by_server(self, timeout=10):
        """Reads (and drops) what is left until the end: EOF or a reset."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.s.settimeout(max(deadline - time.time(), 0.01))
            try:
                if not self.s.recv(1 << 20):
                    return True
            except ConnectionResetError:
                return True
            except socket.timeout:
                pass
        return False

    def reset(self):
        """Closes with SO_LINGER 0: the server sees a reset, not a FIN."""
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.s.close()

    def close(self):
        self.s.close()


def kernel_send_buffer_max():
    """The most a TCP socket's send buffer grows to (tcp_wmem's maximum)."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            return int(f.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 << 20


def first_difference(got, want):
    """The index of the first line that differs, and the two lines."""
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return f"{i}: {g[:60]!r} instead of {w[:60]!r}"
    return f"{min(len(got), len(want))}: {len(got)} lines instead of {len(want)}"


def expect(client, want, timeout=10):
    got = client.line(timeout)
    assert got == want, f"{client.name} got {got!r}, not {want!r}"


def chat_server(prog, *extra, listen=None, port=None):
    probe = listen[5:].split(":")[0] if listen and listen.startswith("unix:") else None
    srv = Server(prog, None, *extra, listen=listen, probe=probe, port=port)
    srv.joined = lambda n, timeout=10: wait_for(
        lambda: srv.stderr().count(" joined") >= n, f"{n} clients joined", timeout)
    return srv


def stop_clean(srv, sig=signal.SIGTERM):
    """Stops the server with sig; it must exit 0 with no sanitizer report."""
    srv.p.send_signal(sig)
    rc, err = srv.stop(signal_it=False)
    assert rc == 0, (rc, err[-2000:])
    assert not SANITIZER.search(err), err[-4000:]
    return err


def cases(prog):
    name = os.path.basename(prog)

    @case(f"{name}: the first line is a name; others get each later line as 'name: text', "
          "the sender does not")
    def _():
        with chat_server(prog) as srv:
            alice, bob, carol = (Client(srv, n) for n in ("alice", "bob", "carol"))
            srv.joined(3)
            alice.send("hello, all")
            expect(bob, "alice: hello, all")
            expect(carol, "alice: hello, all")
            # Bob's line follows alice's on her stream: had hers come back
            # to her, it would come first.
            bob.s.sendall(b"hi alice\r\n")  # CRLF ends a line too
            expect(alice, "bob: hi alice")
            expect(carol, "bob: hi alice")
            assert "alice joined" in srv.stderr(), srv.stderr()
            # A name is cut to 63 bytes; an empty first line names no one.
            dave = Client(srv, "")
            dave.send("d" * 100)
            srv.joined(4)
            dave.send("hi")
            expect(alice, "d" * 63 + ": hi")
            dave.close()
            for c in (alice, bob, carol):
                c.close()
            for who in ("alice", "bob", "carol"):
                assert srv.wait_log(f"{who} left"), srv.stderr()
            stop_clean(srv)

    @case(f"{name}: 50 clients each receive every other client's lines, in order, "
          "and none of their own")
    def _():
        n, k = 50, 3
        with chat_server(prog) as srv:
            clients = [Client(srv, f"c{i}") for i in range(n)]
            srv.joined(n)
            for j in range(k):
                for i, c in enumerate(clients):
                    c.send(f"line {j} from c{i}")
            # The last word: c0 to everyone; c1 to c0.
            clients[0].send("done")
            clients[1].send("done")
            for i, c in enumerate(clients):
                got = c.lines((n - 1) * k + (i != 0) + (i != 1), timeout=30)
                mine = [g for g in got if g.startswith(f"c{i}: ")]
                assert not mine, (i, mine[:3])
                for other in range(n):
                    if other == i:
                        continue
                    theirs = [g for g in got if g.startswith(f"c{other}: line ")]
                    want = [f"c{other}: line {j} from c{other}" for j in range(k)]
                    assert theirs == want, (i, other, theirs)
                done = [g for g in got if g.endswith(": done")]
                # Two connections: either may be read first.
                assert sorted(done) == [f"c{m}: done" for m in (0, 1) if m != i], (i, done)
            for c in clients:
                c.close()
            stop_clean(srv)

    @case(f"{name}: a client that never reads is disconnected once its backlog passes "
          "--max-backlog, and the others keep receiving without delay")
    def _():
        with chat_server(prog, "--max-backlog", "65536") as srv:
            slow = Client(srv, "slow", rcvbuf=4096)
            fast = Client(srv, "fast")
            talker = Client(srv, "talker")
            srv.joined(3)
            text = "x" * 1000
            sent, batch = 0, 256
            # The kernel's buffers take a few MB before the server's own
            # backlog grows; 64 MiB is far more than enough.
            while "slow cannot keep up" not in srv.stderr():
                assert sent < 64 * 1024, f"slow still connected after {sent} lines"
                t0 = time.time()
                talker.s.sendall(b"".join(f"{sent + i:08d} {text}\n".encode()
                                          for i in range(batch)))
                got = fast.lines(batch, timeout=10)
                assert got == [f"talker: {sent + i:08d} {text}" for i in range(batch)], \
                    f"fast got something else after line {sent}"
                assert time.time() - t0 < 5, f"a batch took {time.time() - t0:.1f} s"
                sent += batch
            # Cut off at this bound, not the default 16 MiB: what was sent
            # is at most the kernel's send buffer and the bound, and a batch.
            assert sent * 1010 < 2 * kernel_send_buffer_max() + (1 << 20), \
                f"slow was cut off only after {sent} lines"
            assert srv.wait_log("slow left"), srv.stderr()
            assert slow.closed_by_server(), "slow was not disconnected"
            talker.send("after slow")
            expect(fast, "talker: after slow")
            for c in (fast, talker):
                c.close()
            stop_clean(srv)

    @case(f"{name}: without --max-backlog the bound is 16 MiB")
    def _():
        with chat_server(prog) as srv:
            slow = Client(srv, "slow", rcvbuf=4096)
            talker = Client(srv, "talker")
            srv.joined(2)
            limit = (16 << 20) + 2 * kernel_send_buffer_max() + (1 << 20)
            chunk = (b"x" * 1023 + b"\n") * 1024  # 1 MiB
            sent = 0
            while sent < limit and "slow cannot keep up" not in srv.stderr():
                talker.s.sendall(chunk)
                sent += len(chunk)
            # Not before 16 MiB (the server has read at most what was sent)...
            assert sent > 16 << 20, f"slow was cut off after {sent} bytes"
            # ...and by 16 MiB and what the kernel's buffers hold.
            assert srv.wait_log("slow cannot keep up", timeout=20), \
                f"slow still connected after {sent} bytes"
            assert slow.closed_by_server()
            talker.close()
            stop_clean(srv)

    @case(f"{name}: clients that vanish in mid-line, with a reset, or while being written "
          "to do not disturb the others")
    def _():
        with chat_server(prog) as srv:
            a, b = Client(srv, "a"), Client(srv, "b")
            half, rst = Client(srv, "half"), Client(srv, "rst")
            hog = Client(srv, "hog", rcvbuf=4096)  # never reads
            nameless = Client(srv)
            srv.joined(5)
            nameless.s.sendall(b"no name ye")
            nameless.reset()
            # An orderly close in mid-line: the last line counts without
            # its newline.
            half.s.sendall(b"a partial li")
            half.close()
            expect(a, "half: a partial li")
            expect(b, "half: a partial li")
            assert srv.wait_log("half left"), srv.stderr()
            # A reset in mid-line: the line is lost, as the connection is.
            rst.s.sendall(b"another partial")
            rst.reset()
            assert srv.wait_log("rst left"), srv.stderr()
            # 2 MB to b and hog: hog's backlog stays in the server, which
            # is still writing to it when it resets.
            block = b"".join(f"{i:06d} {'y' * 990}\n".encode() for i in range(2000))
            a.s.sendall(block)
            got = b.lines(2000, timeout=30)
            want = [f"a: {i:06d} {'y' * 990}" for i in range(2000)]
            assert got == want, f"b's copy differs from line {first_difference(got, want)}"
            hog.reset()
            assert srv.wait_log("hog left"), srv.stderr()
            a.send("still here")
            expect(b, "a: still here")  # nothing came between
            b.send("so am I")
            expect(a, "b: so am I")  # not even from half or rst
            for c in (a, b):
                c.close()
            stop_clean(srv)

    @case(f"{name}: a line over 64 KiB ends its sender's connection with a log line; "
          "the others go on")
    def _():
        with chat_server(prog) as srv:
            a, b, long = Client(srv, "a"), Client(srv, "b"), Client(srv, "long")
            srv.joined(3)
            try:
                long.s.sendall(b"z" * 70000 + b"\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may close before it has read it all
            wait_for(lambda: re.search(r"long left: .*(too long|longer than)", srv.stderr()),
                     "log line saying the line was too long")
            assert long.closed_by_server()
            a.send("after")
            expect(b, "a: after")
            for c in (a, b):
                c.close()
            stop_clean(srv)

    @case(f"{name}: SIGTERM and SIGINT stop it at once with clients connected, exit 0")
    def _():
        for sig in (signal.SIGTERM, signal.SIGINT):
            with chat_server(prog) as srv:
                a, witness = Client(srv, "a"), Client(srv, "witness")
                stuck = Client(srv, "stuck", rcvbuf=4096)
                srv.joined(3)
                # 10 MB for stuck: more than the kernel's buffers hold, so
                # the server holds a backlog, which it must drop, not flush.
                a.s.sendall(b"".join(b"w" * 1000 + b"\n" for _ in range(10000)))
                a.send("last")
                assert witness.lines(10001, timeout=30)[-1] == "a: last"
                t0 = time.time()
                stop_clean(srv, sig)
                assert time.time() - t0 < 5, f"took {time.time() - t0:.1f} s"
                assert stuck.closed_by_server()
                for c in (a, witness, stuck):
                    c.close()

    @case(f"{name}: a unix: endpoint works, and its socket file is removed on exit")
    def _():
        d = tempfile.mkdtemp()
        path = os.path.join(d, "chat.sock")
        with chat_server(prog, listen=f"unix:{path}") as srv:
            a, b = Client(srv, "a", path=path), Client(srv, "b", path=path)
            srv.joined(2)
            a.send("over unix")
            expect(b, "a: over unix")
            a.close()
            b.close()
            stop_clean(srv)
        assert not os.path.exists(path)
        os.rmdir(d)

    @case(f"{name}: a tls: endpoint works: clients chat over TLS")
    def _():
        port = free_port()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cert("ca.pem"))
        with chat_server(prog, listen=f"tls:{port}:certKey={cert('server.pem')}:"
                         f"privateKey={cert('server.key')}:interface=127.0.0.1", port=port) as srv:
            a, b = Client(srv, "a", tls=ctx), Client(srv, "b", tls=ctx)
            srv.joined(2)
            a.send("over TLS")
            expect(b, "a: over TLS")
            b.send("likewise")
            expect(a, "b: likewise")
            a.close()
            b.close()
            stop_clean(srv)

    @case(f"{name}: bad usage exits 2 with a message naming the problem")
    def _():
        for args, fragment in [
            ([], "--listen"),
            (["--listen"], "--listen"),
            (["--listen", "bogus:1"], "bogus"),
            (["--listen", "tcp:notaport"], "notaport"),
            (["--listen", "tcp:0", "--max-backlog", "lots"], "--max-backlog"),
            (["--listen", "tcp:0", "--max-backlog", "-1"], "--max-backlog"),
            (["--listen", "tcp:0", "--max-backlog"], "--max-backlog"),
            (["--listen", "tcp:0", "--frob"], "--frob"),
        ]:
            p = subprocess.run([prog, *args], capture_output=True, text=True, timeout=10)
            assert p.returncode == 2, (args, p.returncode, p.stderr)
            assert fragment in p.stderr, (args, p.stderr)
            assert not SANITIZER.search(p.stderr), p.stderr

    @case(f"{name}: a port in use is an error, exit 1")
    def _():
        with chat_server(prog) as srv:
            p = subprocess.run([prog, "--listen", srv.listen],
                               capture_output=True, text=True, timeout=10)
            assert p.returncode == 1, (p.returncode, p.stderr)
            assert "in use" in p.stderr, p.stderr
            stop_clean(srv)


for prog in sys.argv[1:]:
    if os.access(prog, os.X_OK):
        cases(prog)
    else:
        with skipping(f"{os.path.basename(prog)} is not built ({prog})"):
            cases(prog)

report()
