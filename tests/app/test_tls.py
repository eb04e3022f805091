#!/usr/bin/env python3
"""`eddy echo` and `eddy portforward` over TLS, against real peers: Python's
ssl module, `openssl s_client` and `openssl s_server`. Versions, resumption,
renegotiation refused, plaintext and truncating clients, TLS on either side
of a relay, an upstream whose certificate does not verify, bad endpoints.

Usage: test_tls.py PATH_TO_EDDY. Ends with "passed=P failed=F".
The certificates come from tests/tls/mkcerts.sh, in $EDDY_TEST_CERTS if set,
else in /tmp/eddy-test-certs-UID (as the C TLS tests do).
"""
import concurrent.futures
import os
import select
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import Server, case, cert, free_port, recv_all, report  # noqa: E402

EDDY = sys.argv[1]
warnings.filterwarnings("ignore", category=DeprecationWarning)  # TLSv1_1


CA = cert("ca.pem")


def tls_listen(port, name="server"):
    return (f"tls:{port}:certKey={cert(name + '.pem')}:privateKey={cert(name + '.key')}"
            ":interface=127.0.0.1")


class Eddy(Server):
    """common.Server for a listening endpoint that names its own port (a
    tls: one): `listen` is a template with {port}. The start-up probe is a
    plain TCP connect, which a TLS listener just sees close."""

    def __init__(self, command, *extra, listen):
        port = free_port()
        listen = listen.format(port=port)
        # Server takes its port from common.free_port: hand it this one.
        real = common.free_port
        common.free_port = lambda: port
        try:
            # Connections are logged at the debug level.
            super().__init__(EDDY, command, *extra, listen=listen,
                             global_opts=("--log-level", "debug"))
        finally:
            common.free_port = real

    def log_wait(self, text, timeout=5):
        """The log once it contains text (or as it is after timeout)."""
        deadline = time.time() + timeout
        while True:
            log = self.stderr()
            if text in log or time.time() > deadline:
                return log
            time.sleep(0.05)

    def assert_alive(self):
        assert self.p.poll() is None, "eddy exited: " + self.stderr()
        log = self.stderr()
        for bad in ("Sanitizer", "runtime error", "Assertion `", "core dumped"):
            assert bad not in log, log

    def stop_clean(self):
        """SIGTERM; it must exit 0 with nothing alarming logged (under
        ASan a leak makes the exit status non-zero)."""
        self.assert_alive()
        rc, err = self.stop()
        assert rc == 0, (rc, err)
        for bad in ("Sanitizer", "runtime error", "Assertion `", "core dumped"):
            assert bad not in err, err
        return err


def echo_tls(name="server", *extra):
    return Eddy("echo", *extra, listen=tls_listen("{port}", name))


def client_ctx(cafile=CA, **versions):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    for k, v in versions.items():
        setattr(ctx, k, v)
    return ctx


def tls_connect(port, ctx=None, host="localhost", timeout=10):
    ctx = ctx or client_ctx()
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=host)
    except BaseException:
        raw.close()
        raise


def tls_send_and_receive(s, payload, timeout=30):
    """Sends payload on the TLS socket s while reading what comes back, in
    one thread: an SSL object must not be written by one thread while
    another reads it (OpenSSL does not allow it, and a record can be
    corrupted). Returns what was read, once len(payload) bytes are in or
    the peer ends; a stall of `timeout` seconds fails."""
    s.setblocking(False)
    sent, got = 0, bytearray()
    deadline = time.time() + timeout
    while len(got) < len(payload):
        assert time.time() < deadline, ("stalled", sent, len(got))
        writing = sent < len(payload)
        if s.pending() == 0:
            select.select([s], [s] if writing else [], [], 1)
        try:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        if writing:
            try:
                sent += s.send(payload[sent:sent + 16384])
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
    s.settimeout(10)
    return bytes(got)


def closed_within(s, seconds):
    """Reads until EOF or reset; returns (bytes, elapsed). A timeout fails."""
    s.settimeout(seconds)
    t0, data = time.time(), b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        raise AssertionError(f"not closed within {seconds} s (got {data[:80]!r})")
    except (ConnectionResetError, ssl.SSLError):
        pass
    return data, time.time() - t0


class SClient:
    """openssl s_client with its stdin and (merged) output as pipes."""

    def __init__(self, port, *args):
        self.p = subprocess.Popen(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", CA,
             "-verify_return_error", "-servername", "localhost", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.buf = b""
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        fd = self.p.stdout.fileno()
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            with self.lock:
                self.buf += chunk

    @property
    def out(self):
        with self.lock:
            return self.buf.decode(errors="replace")

    def send(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def wait_for(self, text, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.out:
                return True
            if self.p.poll() is not None:
                self.t.join(timeout=2)
                return text in self.out
            time.sleep(0.02)
        return False

    def finish(self, timeout=10):
        """Closes stdin (s_client then sends close_notify and exits)."""
        try:
            self.p.stdin.close()
        except BrokenPipeError:
            pass
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.t.join(timeout=5)
        return self.p.returncode, self.out


class PyServer:
    """A Python echo server on 127.0.0.1, plain or (with cert) TLS; one
    thread per connection. Handshake failures it sees are kept in errors."""

    def __init__(self, cert_name=None):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.ctx = None
        if cert_name:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(cert(cert_name + ".pem"), cert(cert_name + ".key"))
        self.errors, self.versions, self.accepted = [], [], 0
        self.stopping = False
        self.t = threading.Thread(target=self._accept, daemon=True)
        self.t.start()

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(10)
        try:
            if self.ctx:
                conn = self.ctx.wrap_socket(conn, server_side=True)
                self.versions.append(conn.version())
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)
        except (OSError, ssl.SSLError) as e:
            self.errors.append(str(e))
        finally:
            conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stopping = True
        self.t.join(timeout=5)
        self.sock.close()


# ---- eddy echo over TLS ------------------------------------------------------


@case("echo over tls: a verifying Python client gets its bytes back over TLS 1.3")
def _():
    with echo_tls() as srv:
        s = tls_connect(srv.port)
        assert s.version() == "TLSv1.3", s.version()
        payload = os.urandom(1 << 20)
        s.sendall(b"hello, tls\n")
        assert recv_all(s, 11) == b"hello, tls\n"
        s.sendall(payload)
        got = recv_all(s, len(payload))
        assert got == payload, (len(got), len(payload))
        s.unwrap().close()  # close_notify: a clean end
        err = srv.stop_clean()
        assert "connection from 127.0.0.1" in err, err


@case("echo over tls: a TLS 1.2 client is served; a TLS 1.1 one is refused with an alert")
def _():
    with echo_tls() as srv:
        s = tls_connect(srv.port, client_ctx(maximum_version=ssl.TLSVersion.TLSv1_2))
        assert s.version() == "TLSv1.2", s.version()
        s.sendall(b"twelve")
        assert recv_all(s, 6) == b"twelve"
        s.close()
        old = client_ctx(minimum_version=ssl.TLSVersion.TLSv1,
                         maximum_version=ssl.TLSVersion.TLSv1_1)
        old.set_ciphers("DEFAULT:@SECLEVEL=0")  # lets the client offer 1.1 at all
        try:
            tls_connect(srv.port, old).close()
            raise AssertionError("a TLS 1.1 handshake succeeded")
        except ssl.SSLError as e:
            # The server's alert, not a local refusal to offer 1.1.
            assert "PROTOCOL_VERSION" in str(e).upper(), e
        log = srv.log_wait("unsupported protocol")
        assert "unsupported protocol" in log, log
        s = tls_connect(srv.port)
        s.sendall(b"still up")
        assert recv_all(s, 8) == b"still up"
        s.close()
        srv.stop_clean()


@case("echo over tls: 200 concurrent TLS clients are each echoed")
def _():
    with echo_tls() as srv:
        def handshake(_):
            return tls_connect(srv.port, timeout=30)
        with concurrent.futures.ThreadPoolExecutor(max_workers=100) as pool:
            clients = list(pool.map(handshake, range(200)))
        assert all(c.version() == "TLSv1.3" for c in clients)
        for i, c in enumerate(clients):
            c.sendall(f"client {i}\n".encode())
        for i, c in enumerate(clients):
            want = f"client {i}\n".encode()
            assert recv_all(c, len(want)) == want, i
        for c in clients:
            c.close()
        srv.stop_clean()


@case("echo over tls: openssl s_client verifies the chain and gets its line back")
def _():
    with echo_tls() as srv:
        c = SClient(srv.port)
        c.send(b"line from s_client\n")
        echoed = c.wait_for("line from s_client", 10)  # stdin is not shown
        rc, out = c.finish()
        assert echoed, out
        assert "Verify return code: 0 (ok)" in out, out
        assert "TLSv1.3" in out, out
        assert rc == 0, (rc, out)


@case("echo over tls: s_client resumes its session with the server's TLS 1.3 ticket")
def _():
    with echo_tls() as srv, tempfile.TemporaryDirectory() as d:
        sess = os.path.join(d, "session.pem")
        c = SClient(srv.port, "-sess_out", sess)
        c.send(b"first connection\n")
        assert c.wait_for("first connection", 10), c.out
        rc, out = c.finish()
        assert "New, TLSv1.3" in out, out
        assert os.path.getsize(sess) > 0, "s_client saved no session"
        c = SClient(srv.port, "-sess_in", sess)
        c.send(b"second connection\n")
        assert c.wait_for("second connection", 10), c.out
        rc, out = c.finish()
        assert "Reused, TLSv1.3" in out, out
        assert "Verify return code: 0 (ok)" in out, out
        srv.stop_clean()


@case("echo over tls: a Python TLS 1.2 client resumes its session")
def _():
    with echo_tls() as srv:
        ctx = client_ctx(maximum_version=ssl.TLSVersion.TLSv1_2)
        s = tls_connect(srv.port, ctx)
        s.sendall(b"a")
        assert recv_all(s, 1) == b"a"
        session = s.session
        s.unwrap().close()
        raw = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
        assert s.session_reused, "the session was not resumed"
        s.sendall(b"b")
        assert recv_all(s, 1) == b"b"
        s.close()


@case("echo over tls: a TLS 1.2 renegotiation is refused and the server serves on")
def _():
    with echo_tls() as srv:
        c = SClient(srv.port, "-tls1_2")
        c.send(b"before renegotiation\n")
        assert c.wait_for("before renegotiation", 10), c.out
        assert "TLSv1.2" in c.out, c.out
        c.send(b"R\n")  # s_client's command: renegotiate
        assert c.wait_for("RENEGOTIATING", 10), c.out
        # Refused: s_client gets the no_renegotiation alert and gives up;
        # no second handshake completes (it would print a new session).
        ended = c.wait_for("no renegotiation", 10)
        rc, out = c.finish()
        assert ended, out
        assert out.count("Verify return code") == 1, out
        assert rc != 0, (rc, out)
        srv.assert_alive()
        s = tls_connect(srv.port)
        s.sendall(b"fresh")
        assert recv_all(s, 5) == b"fresh"
        s.close()
        srv.stop_clean()


@case("echo over tls: a plaintext client is closed promptly, the server serves on")
def _():
    with echo_tls() as srv:
        c = srv.connect()
        c.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data, took = closed_within(c, 5)
        c.close()
        assert took < 3, took
        assert b"HTTP" not in data, data
        # Whatever came back is a TLS alert record, not an echo.
        assert data == b"" or data[0] == 0x15, data
        s = tls_connect(srv.port)
        s.sendall(b"after")
        assert recv_all(s, 5) == b"after"
        s.close()
        srv.stop_clean()


@case("echo over tls: a client that never starts the handshake is dropped after 10 s")
def _():
    with echo_tls() as srv:
        c = srv.connect()
        t0 = time.time()
        data, _ = closed_within(c, 20)
        took = time.time() - t0
        c.close()
        assert 8 < took < 15, took
        log = srv.log_wait("closed:")
        assert "closed:" in log, log
        srv.stop_clean()


@case("echo over tls: a peer ending TCP without close_notify is logged as truncation")
def _():
    with echo_tls() as srv:
        # A clean end first: close_notify, no truncation.
        s = tls_connect(srv.port)
        s.sendall(b"clean")
        assert recv_all(s, 5) == b"clean"
        clean = "127.0.0.1:%d" % s.getsockname()[1]
        s.unwrap().close()
        # Then TCP's FIN with no close_notify (SSLSocket.shutdown drops
        # the TLS layer and shuts the socket itself down).
        s = tls_connect(srv.port)
        s.sendall(b"cut")
        assert recv_all(s, 3) == b"cut"
        cut = "127.0.0.1:%d" % s.getsockname()[1]
        s.shutdown(socket.SHUT_RDWR)
        s.close()
        log = srv.log_wait(f"{cut} closed")
        lines = [ln for ln in log.splitlines() if f"{cut} closed" in ln]
        assert lines and "close_notify" in lines[0], log
        lines = [ln for ln in log.splitlines() if f"{clean} closed" in ln]
        assert lines and lines[0].endswith(f"{clean} closed"), log
        s = tls_connect(srv.port)
        s.sendall(b"next")
        assert recv_all(s, 4) == b"next"
        s.close()
        srv.stop_clean()


@case("echo over tls: an RSA certificate serves too; a client's own certificate is not needed")
def _():
    # rsa.pem: an RSA server key works as well as the ECDSA ones. The
    # server asks for no client certificate, so having one changes nothing.
    with echo_tls("rsa") as srv:
        ctx = client_ctx()
        ctx.load_cert_chain(cert("client.pem"), cert("client.key"))
        s = tls_connect(srv.port, ctx)
        assert s.version() == "TLSv1.3"
        s.sendall(b"rsa")
        assert recv_all(s, 3) == b"rsa"
        s.close()


# ---- portforward with TLS on either side ---------------------------------------


def forward(listen, connect, *extra):
    return Eddy("portforward", "--connect", connect, *extra, listen=listen)


@case("portforward plaintext in, TLS out: through openssl s_server -rev")
def _():
    port = free_port()
    ss = subprocess.Popen(
        ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", cert("server.pem"),
         "-key", cert("server.key"), "-rev"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        with forward("tcp:{port}:interface=127.0.0.1",
                     f"tls:host=localhost:port={port}:trustRoots={CA}") as pf:
            c = pf.connect()
            c.sendall(b"hello eddy\n")
            got = b""
            c.settimeout(10)
            while b"\n" not in got:
                chunk = c.recv(100)
                if not chunk:
                    break
                got += chunk
            assert got == b"ydde olleh\n", got
            c.close()
            pf.stop_clean()
    finally:
        ss.kill()
        ss.wait()


@case("portforward plaintext in, TLS out: 1 MB through a Python TLS echo server")
def _():
    with PyServer("server") as up, \
            forward("tcp:{port}:interface=127.0.0.1",
                    f"tls:host=localhost:port={up.port}:trustRoots={CA}") as pf:
        c = pf.connect()
        payload = os.urandom(1 << 20)
        sender = threading.Thread(target=c.sendall, args=(payload,))
        sender.start()
        got = recv_all(c, len(payload))
        sender.join(timeout=10)
        assert got == payload, (len(got), len(payload))
        c.close()
        assert "TLSv1.3" in up.versions, up.versions
        # host=127.0.0.1 verifies against the certificate's IP address.
    with PyServer("server") as up, \
            forward("tcp:{port}:interface=127.0.0.1",
                    f"tls:host=127.0.0.1:port={up.port}:trustRoots={CA}") as pf:
        c = pf.connect()
        c.sendall(b"by address")
        assert recv_all(c, 10) == b"by address"
        c.close()


@case("portforward TLS in, plaintext out: a Python TLS client round-trips")
def _():
    with PyServer() as up, \
            forward(tls_listen("{port}"), f"tcp:host=127.0.0.1:port={up.port}") as pf:
        s = tls_connect(pf.port)
        payload = os.urandom(1 << 20)
        got = tls_send_and_receive(s, payload)
        assert got == payload, (len(got), len(payload))
        s.unwrap().close()
        pf.stop_clean()


@case("portforward TLS in and TLS out")
def _():
    with PyServer("server") as up, \
            forward(tls_listen("{port}"),
                    f"tls:host=localhost:port={up.port}:trustRoots={CA}") as pf:
        s = tls_connect(pf.port)
        s.sendall(b"both ways encrypted")
        assert recv_all(s, 19) == b"both ways encrypted"
        s.close()


def refused_upstream(cert_name, connect_extra, reason):
    with PyServer(cert_name) as up, \
            forward("tcp:{port}:interface=127.0.0.1",
                    f"tls:host=localhost:port={up.port}{connect_extra}") as pf:
        c = pf.connect()
        c.sendall(b"should not arrive")
        data, took = closed_within(c, 5)
        c.close()
        assert data == b"", data
        assert took < 3, took
        log = pf.log_wait(reason)
        assert reason in log, log
        assert "certificate verify failed" in log, log
        pf.stop_clean()


@case("portforward to a TLS upstream with the wrong name: closed, reason logged")
def _():
    refused_upstream("other", f":trustRoots={CA}", "hostname mismatch")


@case("portforward to a TLS upstream from an unknown CA: closed, reason logged")
def _():
    refused_upstream("unknown", f":trustRoots={CA}", "unable to get local issuer certificate")


@case("portforward to a self-signed or expired upstream: closed, reason logged")
def _():
    refused_upstream("self", f":trustRoots={CA}", "self-signed certificate")
    refused_upstream("expired", f":trustRoots={CA}", "certificate has expired")


@case("portforward to an upstream the system CAs do not know: closed, reason logged")
def _():
    refused_upstream("server", "", "unable to get local issuer certificate")


@case("portforward with verify=no reaches a self-signed upstream")
def _():
    with PyServer("self") as up, \
            forward("tcp:{port}:interface=127.0.0.1",
                    f"tls:host=localhost:port={up.port}:verify=no") as pf:
        c = pf.connect()
        c.sendall(b"unverified")
        assert recv_all(c, 10) == b"unverified"
        c.close()


# ---- bad endpoints ---------------------------------------------------------------


@case("bad tls endpoints: usage errors exit 2, unusable files exit 1, each named")
def _():
    srv = cert("server.pem")
    key = cert("server.key")
    missing = "/nonexistent/eddy-cert.pem"
    for cmd, args, rc, fragment in [
        ("echo", ["--listen", "tls:8443"], 2, "missing certKey"),
        ("echo", ["--listen", "tls:8443:certKey="], 2, "certKey"),
        ("echo", ["--listen", f"tls:8443:certKey={srv}:privateKey={key}:verify=no"], 2, "verify"),
        ("echo", ["--listen", f"tls:8443:certKey={missing}"], 1, missing),
        ("echo", ["--listen", f"tls:8443:certKey={srv}:privateKey={missing}"], 1, missing),
        ("echo", ["--listen", f"tls:8443:certKey={cert('ca.key')}"], 1, "ca.key"),
        ("echo", ["--listen", f"tls:8443:certKey={srv}:privateKey={cert('other.key')}"], 1,
         "does not match"),
        ("portforward", ["--listen", "tcp:0", "--connect", "tls:host=a:port=1:verify=maybe"], 2,
         "verify 'maybe'"),
        ("portforward", ["--listen", "tcp:0", "--connect", "tls:host=localhost"], 2,
         "missing port"),
        ("portforward", ["--listen", "tcp:0", "--connect", f"tls:localhost:1:certKey={srv}"], 2,
         "certKey"),
    ]:
        p = subprocess.run([EDDY, cmd, *args], capture_output=True, text=True, timeout=10)
        assert p.returncode == rc, (args, p.returncode, p.stderr)
        assert fragment in p.stderr, (args, p.stderr)


@case("an unreadable trustRoots is reported by its name, not as something else")
def _():
    missing = "/nonexistent/eddy-roots.pem"
    target = f"tls:host=localhost:port={free_port()}:trustRoots={missing}"
    p = subprocess.Popen([EDDY, "portforward", "--listen", "tcp:0:interface=127.0.0.1",
                          "--connect", target], stderr=subprocess.PIPE, text=True)
    try:
        rc = p.wait(timeout=2)
        err = p.stderr.read()
        # Refused at start: fine, if it says which file.
        assert rc != 0 and missing in err, (rc, err)
        return
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        p.stderr.close()
    # Accepted at start: each connection must then say why it failed.
    with forward("tcp:{port}:interface=127.0.0.1", target) as pf:
        c = pf.connect()
        data, took = closed_within(c, 5)
        c.close()
        log = pf.log_wait(missing, 3)
        assert missing in log, log
        assert "out of memory" not in log, log


report()
