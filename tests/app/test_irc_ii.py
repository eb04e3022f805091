#!/usr/bin/env python3
"""`eddy irc` with a real client: ii (Debian's ii, /usr/bin/ii), driven
through its FIFOs, and a raw-socket client in the same channel. ii
connects and registers; `/j #chan` into its server `in` makes it join, and
the raw client sees the JOIN; a line into the channel's `in` reaches the
raw client as a PRIVMSG; the raw client's PRIVMSG shows up in the
channel's `out`; `/l` makes ii part, seen by the raw client; `/q` makes it
quit and exit. eddy, stopped by SIGTERM at the end, must exit 0 with no
sanitizer report.

Every wait is bounded (WAIT seconds) and waits for its condition.

Usage: test_irc_ii.py PATH_TO_EDDY. Ends with "passed=P failed=F".
"""
import errno
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Server, case, report  # noqa: E402

EDDY = sys.argv[1]
II = os.environ.get("II", "/usr/bin/ii")
WAIT = 10
SANITIZER = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")


def wait_for(what, cond, why=lambda: ""):
    deadline = time.time() + WAIT
    while True:
        got = cond()
        if got:
            return got
        if time.time() > deadline:
            raise AssertionError(f"no {what} within {WAIT} s {why()}")
        time.sleep(0.02)


class Raw:
    """A raw IRC client: register, send lines, wait for a matching line."""

    def __init__(self, port, nick):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.buf = b""
        self.seen = []
        self.send(f"NICK {nick}", f"USER {nick} 0 * :{nick}")
        self.expect(r"^:\S+ 001 ")

    def send(self, *lines):
        self.sock.sendall(b"".join(x.encode() + b"\r\n" for x in lines))

    def expect(self, pattern):
        """The first line from now on matching pattern (a regex), answering
        PINGs on the way."""
        deadline = time.time() + WAIT
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                line = line.rstrip(b"\r").decode("utf-8", "replace")
                self.seen.append(line)
                if line.startswith("PING "):
                    self.send("PONG " + line[5:])
                if re.search(pattern, line):
                    return line
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError(f"no line like {pattern!r} within {WAIT} s; saw {self.seen[-10:]}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                raise AssertionError(f"connection closed waiting for {pattern!r}; saw {self.seen[-10:]}")
            self.buf += data


def fifo_write(path, text):
    """Writes text into ii's FIFO once ii has it open for reading."""
    def attempt():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENXIO):
                return False
            raise
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
        return True
    wait_for(f"reader on {path}", attempt)


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def ii_session(port):
    """ii joins, talks, hears and parts on the server at 127.0.0.1:port."""
    top = tempfile.mkdtemp(prefix="eddy-test-ii-")
    ii = None
    try:
        raw = Raw(port, "watcher")
        raw.send("JOIN #chan")
        raw.expect(r"^:watcher!\S* JOIN :?#chan$")
        ii = subprocess.Popen([II, "-s", "127.0.0.1", "-p", str(port), "-n", "iiuser",
                               "-f", "ii user", "-i", top],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        srv = os.path.join(top, "127.0.0.1")
        logs = lambda: f"; ii's server out: {read(os.path.join(srv, 'out'))!r}"  # noqa: E731
        # Registered once the welcome (001, which ii writes without its
        # number: "Welcome ... iiuser!iiuser@host") is in the server's out.
        welcomed = re.compile(r"Welcome|iiuser!")
        wait_for("welcome in ii's out", lambda: ii.poll() is not None or welcomed.search(
            read(os.path.join(srv, "out"))), logs)
        if ii.poll() is not None:
            raise AssertionError(f"ii exited {ii.returncode}: {ii.stderr.read().decode()}" + logs())
        fifo_write(os.path.join(srv, "in"), "/j #chan\n")
        raw.expect(r"^:iiuser!\S* JOIN :?#chan$")
        chan = os.path.join(srv, "#chan")
        fifo_write(os.path.join(chan, "in"), "hello from ii\n")
        raw.expect(r"^:iiuser!\S* PRIVMSG #chan :hello from ii$")
        raw.send("PRIVMSG #chan :hello from the socket")
        wait_for("the raw client's message in ii's channel out",
                 lambda: "<watcher> hello from the socket" in read(os.path.join(chan, "out")),
                 lambda: f"; channel out: {read(os.path.join(chan, 'out'))!r}")
        fifo_write(os.path.join(chan, "in"), "/l see you\n")
        raw.expect(r"^:iiuser!\S* PART #chan( :?.*)?$")
        fifo_write(os.path.join(srv, "in"), "/q done\n")
        try:
            ii.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"ii did not exit within {WAIT} s of /q" + logs())
    finally:
        if ii is not None and ii.poll() is None:
            ii.kill()
            ii.wait()
        shutil.rmtree(top, ignore_errors=True)


@case("ii joins, talks, hears and parts (eddy irc)")
def _():
    if not os.access(II, os.X_OK):
        raise AssertionError(f"{II} is missing: install ii (scripts/deps.sh)")
    with Server(EDDY, "irc") as s:
        ii_session(s.port)
        code, log = s.stop()
        if code != 0 or SANITIZER.search(log):
            raise AssertionError(f"eddy irc exited {code}: {log}")


report()
