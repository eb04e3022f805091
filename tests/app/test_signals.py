#!/usr/bin/env python3
"""Signals and start-up as an operator meets them: an encrypted key on a
terminal is refused instead of prompted for; SIGTERM during a start-up
that blocks (a certificate path that is a FIFO) still terminates and
leaves no socket file; SIGHUP and SIGUSR1 leave echo, portforward and
procmon running (SIGHUP rereads the certificates of tls: listeners);
SIGTERM still stops gracefully and removes a unix socket file.

Usage: test_signals.py PATH_TO_EDDY. Ends with "passed=P failed=F".
"""
import os
import pty
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import Server, case, cert, free_port, report  # noqa: E402

EDDY = sys.argv[1]


def wait_until(what, cond, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def wait_log(srv, pattern, count=1, timeout=10):
    wait_until(f"{count} log line(s) matching {pattern!r}",
               lambda: len(re.findall(pattern, srv.stderr())) >= count, timeout)


def encrypt_key(src, dst, passphrase):
    subprocess.run(["openssl", "pkey", "-in", src, "-aes256", "-passout", "pass:" + passphrase,
                    "-out", dst], check=True, timeout=30)


def echo_round_trip(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"ping\n")
        assert s.recv(100) == b"ping\n"


def tls_peer_cert(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            der = s.getpeercert(binary_form=True)
            s.sendall(b"hi")
            assert s.recv(10) == b"hi"
            return der


def hold_fifo(fifo, timeout=10):
    """Waits until a reader (eddy, at start-up) opens the FIFO, then holds
    it open for writing without writing: the reader stays blocked in its
    read. Returns the descriptor, for the caller to close."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: no reader yet
            time.sleep(0.02)
    raise AssertionError("nothing opened " + fifo)


def der_of(pem_path):
    with open(pem_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


class Eddy(Server):
    """common.Server whose listen string names its port with {port}."""

    def __init__(self, command, listen, *extra):
        port = free_port()
        # Server takes its port from common.free_port: hand it this one.
        real = common.free_port
        common.free_port = lambda: port
        try:
            super().__init__(EDDY, command, *extra, listen=listen.format(port=port))
        finally:
            common.free_port = real

    def stop(self, *args, **kwargs):
        status, log = super().stop(*args, **kwargs)
        for bad in ("Sanitizer", "runtime error"):
            assert bad not in log, log
        return status, log


# ---- 1. An encrypted key is refused, never prompted for ------------------------


def run_on_terminal(args, timeout=10):
    """Runs eddy with a pseudo-terminal as its controlling terminal and
    standard streams; returns (exit status, everything it wrote)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execv(EDDY, [EDDY, *args])
        finally:
            os._exit(127)
    out = b""
    deadline = time.time() + timeout
    status = None
    try:
        while time.time() < deadline:
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    chunk = b""
                out += chunk
                if b"pass phrase" in out:
                    break
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(st)
                try:
                    while select.select([fd], [], [], 0)[0]:
                        chunk = os.read(fd, 4096)
                        if not chunk:
                            break
                        out += chunk
                except OSError:
                    pass
                break
    finally:
        if status is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    return status, out.decode(errors="replace")


@case("an encrypted key on a terminal is refused at once, not prompted for")
def _():
    with tempfile.TemporaryDirectory() as d:
        key = os.path.join(d, "enc.key")
        encrypt_key(cert("server.key"), key, "secret")
        status, out = run_on_terminal(
            ["echo", "--listen", f"tls:0:certKey={cert('server.pem')}:privateKey={key}"])
        assert "pass phrase" not in out, "prompted: " + out
        assert status not in (None, 0), f"status {status}: {out}"
        assert f"private key in '{key}' is encrypted" in out, out


@case("passphraseFile= opens an encrypted key and the listener serves TLS")
def _():
    with tempfile.TemporaryDirectory() as d:
        key = os.path.join(d, "enc.key")
        pfile = os.path.join(d, "pass")
        encrypt_key(cert("server.key"), key, "secret")
        with open(pfile, "w") as f:
            f.write("secret\n")
        listen = (f"tls:{{port}}:certKey={cert('server.pem')}:privateKey={key}"
                  f":passphraseFile={pfile}:interface=127.0.0.1")
        with Eddy("echo", listen) as srv:
            assert tls_peer_cert(srv.port) == der_of(cert("server.pem"))
            assert srv.stop()[0] == 0


# ---- 2. A terminating signal terminates a blocked start-up ---------------------


@case("SIGTERM during a start-up blocked on a FIFO certificate exits promptly, no socket left")
def _():
    with tempfile.TemporaryDirectory() as d:
        fifo = os.path.join(d, "cert.fifo")
        sock = os.path.join(d, "echo.sock")
        os.mkfifo(fifo)
        log = tempfile.TemporaryFile(mode="w+")
        p = subprocess.Popen([EDDY, "echo", "--listen", f"unix:{sock}",
                              "--listen", f"tls:0:certKey={fifo}"],
                             stdout=subprocess.DEVNULL, stderr=log)
        try:
            w = hold_fifo(fifo)
            assert os.path.exists(sock), "the unix listener opens first"
            p.send_signal(signal.SIGTERM)
            status = p.wait(timeout=5)
            os.close(w)
            assert status != 0, "exit 0 from an interrupted start-up"
            assert not os.path.exists(sock), "socket file left behind"
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            log.close()


@case("SIGINT during a blocked start-up exits promptly too")
def _():
    with tempfile.TemporaryDirectory() as d:
        fifo = os.path.join(d, "cert.fifo")
        os.mkfifo(fifo)
        p = subprocess.Popen([EDDY, "portforward", "--listen", f"tls:0:certKey={fifo}",
                              "--connect", "tcp:127.0.0.1:1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            w = hold_fifo(fifo)
            p.send_signal(signal.SIGINT)
            status = p.wait(timeout=5)
            os.close(w)
            assert status != 0
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()


# ---- 3. SIGHUP and SIGUSR1 leave the servers running ---------------------------


@case("echo: SIGHUP and SIGUSR1 leave it serving; SIGTERM removes its socket file")
def _():
    with tempfile.TemporaryDirectory() as d:
        sock = os.path.join(d, "echo.sock")
        with Eddy("echo", "tcp:{port}:interface=127.0.0.1", "--listen", f"unix:{sock}") as srv:
            for sig, name in ((signal.SIGHUP, "Hangup"), (signal.SIGUSR1, "User defined signal 1"),
                              (signal.SIGUSR2, "User defined signal 2")):
                srv.p.send_signal(sig)
                wait_log(srv, name)
                assert srv.p.poll() is None, f"died of {name}: {srv.stderr()}"
                echo_round_trip(srv.port)
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(10)
                s.connect(sock)
                s.sendall(b"x")
                assert s.recv(10) == b"x"
            status, log = srv.stop()
            assert status == 0, log
            assert not os.path.exists(sock), "socket file left behind"


@case("portforward: SIGHUP and SIGUSR1 leave it relaying")
def _():
    with Eddy("echo", "tcp:{port}:interface=127.0.0.1") as target:
        with Eddy("portforward", "tcp:{port}:interface=127.0.0.1",
                  "--connect", f"tcp:127.0.0.1:{target.port}") as srv:
            for sig, name in ((signal.SIGHUP, "Hangup"), (signal.SIGUSR1, "User defined signal 1")):
                srv.p.send_signal(sig)
                wait_log(srv, name)
                assert srv.p.poll() is None, f"died of {name}: {srv.stderr()}"
                echo_round_trip(srv.port)
            assert srv.stop()[0] == 0


@case("procmon: SIGHUP and SIGUSR1 leave it and its processes running")
def _():
    log = tempfile.TemporaryFile(mode="w+")
    p = subprocess.Popen([EDDY, "procmon", "--process", "t=echo up; exec sleep 60"],
                         stdout=subprocess.DEVNULL, stderr=log, text=True)

    def text():
        log.seek(0)
        return log.read()
    try:
        wait_until("the process's output", lambda: "t: up" in text())
        for sig, name in ((signal.SIGHUP, "Hangup"), (signal.SIGUSR1, "User defined signal 1")):
            p.send_signal(sig)
            wait_until(f"a log line for {name}", lambda: name in text())
            assert p.poll() is None, f"died of {name}: {text()}"
        assert "t: exited" not in text() and "killed" not in text(), text()
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=15) == 0, text()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        log.close()


def replaceable_cert(d):
    """Copies the server certificate and key into directory d, where a test
    can replace them; returns their paths and a tls: listen endpoint on
    them."""
    pem, key = os.path.join(d, "c.pem"), os.path.join(d, "c.key")
    shutil.copy(cert("server.pem"), pem)
    shutil.copy(cert("server.key"), key)
    return pem, key, f"tls:{{port}}:certKey={pem}:privateKey={key}:interface=127.0.0.1"


@case("SIGHUP rereads a tls: listener's certificate: new connections see the new one")
def _():
    with tempfile.TemporaryDirectory() as d:
        pem, key, listen = replaceable_cert(d)
        with Eddy("echo", listen) as srv:
            assert tls_peer_cert(srv.port) == der_of(cert("server.pem"))
            shutil.copy(cert("other.pem"), pem)
            shutil.copy(cert("other.key"), key)
            srv.p.send_signal(signal.SIGHUP)
            wait_log(srv, "reloaded")
            assert tls_peer_cert(srv.port) == der_of(cert("other.pem"))
            assert srv.stop()[0] == 0


@case("SIGHUP and SIGUSR1 during a blocked start-up are ignored: start-up goes on")
def _():
    with tempfile.TemporaryDirectory() as d:
        fifo = os.path.join(d, "cert.fifo")
        os.mkfifo(fifo)
        port = free_port()
        log = tempfile.TemporaryFile(mode="w+")
        p = subprocess.Popen([EDDY, "echo", "--listen",
                              f"tls:{port}:certKey={fifo}:privateKey={cert('server.key')}"
                              ":interface=127.0.0.1"],
                             stdout=subprocess.DEVNULL, stderr=log, text=True)

        def text():
            log.seek(0)
            return log.read()
        try:
            w = hold_fifo(fifo)
            p.send_signal(signal.SIGHUP)
            p.send_signal(signal.SIGUSR1)
            with open(cert("server.pem"), "rb") as f:
                os.write(w, f.read())
            os.close(w)
            wait_until("the listener", lambda: "listening on" in text() or p.poll() is not None)
            assert p.poll() is None, f"exit {p.returncode}: {text()}"
            assert tls_peer_cert(port) == der_of(cert("server.pem"))
            p.send_signal(signal.SIGTERM)
            assert p.wait(timeout=15) == 0, text()
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            log.close()


@case("SIGHUP with a broken certificate keeps serving the old one and says why")
def _():
    with tempfile.TemporaryDirectory() as d:
        pem, key, listen = replaceable_cert(d)
        with Eddy("echo", listen) as srv:
            shutil.copy(cert("other.key"), key)  # no longer matches
            srv.p.send_signal(signal.SIGHUP)
            wait_log(srv, "does not match")
            assert srv.p.poll() is None
            assert tls_peer_cert(srv.port) == der_of(cert("server.pem"))
            assert srv.stop()[0] == 0


@case("portforward: SIGHUP rereads a tls: target's trust roots; a broken file keeps the old")
def _():
    with tempfile.TemporaryDirectory() as d:
        roots = os.path.join(d, "roots.pem")
        shutil.copy(cert("ca2.pem"), roots)  # not the upstream's CA
        up_listen = (f"tls:{{port}}:certKey={cert('server.pem')}"
                     f":privateKey={cert('server.key')}:interface=127.0.0.1")
        with Eddy("echo", up_listen) as up, \
                Server(EDDY, "portforward", "--connect",
                       f"tls:host=localhost:port={up.port}:trustRoots={roots}") as pf:
            def relayed():
                with socket.create_connection(("127.0.0.1", pf.port), timeout=10) as s:
                    s.sendall(b"ping\n")
                    try:
                        return s.recv(100) == b"ping\n"
                    except ConnectionResetError:
                        return False
            assert not relayed()  # the upstream does not verify
            shutil.copy(cert("ca.pem"), roots)
            pf.p.send_signal(signal.SIGHUP)
            wait_log(pf, "reloaded the trust roots")
            assert relayed()
            with open(roots, "w") as f:
                f.write("not a certificate\n")
            pf.p.send_signal(signal.SIGHUP)
            wait_log(pf, "keeping the old trust roots")
            assert relayed()
            assert pf.stop()[0] == 0


report()
