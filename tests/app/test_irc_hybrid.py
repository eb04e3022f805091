#!/usr/bin/env python3
"""`eddy irc` against ircd-hybrid: the same scripted session, three raw
socket clients that register, join (one channel or several, with a key,
by invitation), talk, go away and back, change nick, set the topic and
channel modes (+o +v +m +i +k +l +b), kick, part and quit, and hit the
usual errors (401, 403, 404, 411, 412, 421, 431, 432, 433, 442, 461, 462,
471, 473, 474, 475, 482), run once against each server. Each step's
traffic must agree:

- the numerics each client receives, in order (an error numeric with the
  name or command it is about; 353 with its sorted names, 303 with its
  sorted nicks, 332 with the topic), leaving out those that differ by design: 002-005, LUSERS
  (250-266), the MOTD (375, 372, 376, 422);
- the messages each client sees (JOIN, PART, PRIVMSG, NOTICE from a
  client, NICK, TOPIC, MODE, KICK, QUIT, ERROR): source nick!user, command
  and parameters, with the host part dropped and the server's own name
  written SERVER.

A step ends when every client has had the PONG to a PING sent after it:
both servers answer in order, so what the step caused has arrived by then
(no fixed sleeps). A mismatch prints both servers' side of the step.
eddy's flood control (5 lines a second after a burst) paces the session:
about 40 s against eddy, under a second against hybrid.

ircd-hybrid (/usr/sbin/ircd-hybrid, Debian; scripts/deps.sh installs it)
runs in the foreground on a free loopback port from a configuration
written to a temporary directory: no ident (so "~" before user names, as
eddy has), no +i on connect, no connection throttle, no flood control
(can_flood: the pace of the steps is not under test). hybrid drops PART
and QUIT reasons from clients connected for less than
anti_spam_exit_message_time (0 here, but compared in whole seconds), so
the steps that give one wait until their client has been connected 1.5 s. It refuses
to run as root, so as root it runs as nobody. If it cannot start, the test
fails saying why.

Usage: test_irc_hybrid.py PATH_TO_EDDY. Ends with "passed=P failed=F".
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Server, case, free_port, report  # noqa: E402

EDDY = sys.argv[1]
HYBRID = os.environ.get("IRCD_HYBRID", "/usr/sbin/ircd-hybrid")
WAIT = 10  # seconds: the bound on every wait

SANITIZER = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")

# Numerics whose presence or content differ by design between servers.
INFORMATIONAL = {"002", "003", "004", "005", "042", "250", "251", "252", "253",
                 "254", "255", "265", "266", "372", "375", "376", "422"}
# Messages compared in full (source, command, parameters).
COMPARED = {"JOIN", "PART", "PRIVMSG", "NOTICE", "NICK", "TOPIC", "MODE", "KICK",
            "QUIT", "INVITE"}


def parse(line):
    """An IRC line as (source, command, params): tags dropped, source None
    when absent, the trailing parameter as the last element."""
    if line.startswith("@"):
        line = line.split(" ", 1)[1] if " " in line else ""
    source = None
    if line.startswith(":"):
        source, _, line = line[1:].partition(" ")
    line = line.lstrip(" ")
    params = []
    while line:
        if line.startswith(":"):
            params.append(line[1:])
            break
        word, _, line = line.partition(" ")
        if word:
            params.append(word)
        line = line.lstrip(" ")
    command = params.pop(0).upper() if params else ""
    return source, command, params


class Client:
    """A raw IRC client on a socket; .lines holds what it received that
    the current step has not taken yet."""

    def __init__(self, port, nick):
        self.nick = nick
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.since = time.time()
        self.buf = b""
        self.closed = False
        self.tokens = 0

    def send(self, *lines):
        self.sock.sendall(b"".join(line.encode() + b"\r\n" for line in lines))

    def _read(self, deadline):
        left = deadline - time.time()
        if left <= 0:
            raise AssertionError(f"{self.nick}: no answer within {WAIT} s; had {self.buf!r}")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise AssertionError(f"{self.nick}: no answer within {WAIT} s; had {self.buf!r}")
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
        self.buf += data

    def _take_lines(self):
        *lines, self.buf = self.buf.split(b"\n")
        return [x.rstrip(b"\r").decode("utf-8", "replace") for x in lines]

    def sync(self):
        """Every line up to the PONG to a PING sent now (answering the
        server's PINGs on the way)."""
        self.tokens += 1
        token = f"sync{self.tokens}{self.nick}"
        self.send(f"PING :{token}")
        got = []
        deadline = time.time() + WAIT
        while True:
            for line in self._take_lines():
                src, cmd, params = parse(line)
                if cmd == "PONG" and params and params[-1] == token:
                    return got
                if cmd == "PING" and src is None:
                    self.send("PONG :" + (params[-1] if params else ""))
                    continue
                got.append(line)
            if self.closed:
                raise AssertionError(f"{self.nick}: connection closed while waiting for PONG; got {got}")
            self._read(deadline)

    def until_closed(self):
        """Every line up to the server's closing the connection."""
        got = []
        deadline = time.time() + WAIT
        while True:
            got += self._take_lines()
            if self.closed:
                return got
            self._read(deadline)

    def close(self):
        self.sock.close()


def normalise(line, server):
    """What of a line is compared, or None for what is not."""
    src, cmd, params = parse(line)
    if src is not None and "!" in src:
        src = src.split("@", 1)[0]
    elif src is not None:
        src = "SERVER"
    params = ["SERVER" if p == server else p for p in params]
    if re.fullmatch(r"\d\d\d", cmd):
        if cmd in INFORMATIONAL:
            return None
        if cmd == "001":
            return cmd
        if cmd == "353" and len(params) >= 4:
            return f"{cmd} {params[2]} {' '.join(sorted(params[3].split()))}"
        if cmd == "303" and len(params) >= 2:
            return f"{cmd} {' '.join(sorted(params[1].split()))}"
        if cmd == "332" and len(params) >= 3:
            return f"{cmd} {params[1]} :{params[2]}"
        if cmd[0] == "4" and len(params) >= 3:
            return f"{cmd} {params[1]}"
        return cmd
    if cmd == "ERROR":
        return "ERROR"
    if cmd not in COMPARED or (cmd == "NOTICE" and src == "SERVER"):
        return None
    return f":{src} {cmd} " + " ".join(params[:-1] + [":" + params[-1]] if params else [])


# The session: (actor, lines) steps; "QUIT" as a line closes the actor.
# Nicks a, b, c are alice, bob and carol.
SESSION = [
    ("alice", ["NICK alice", "USER alice 0 * :Alice A"]),
    ("bob", ["NICK bob", "USER bob 0 * :Bob B"]),
    ("carol", ["NICK carol", "USER carol 0 * :Carol C"]),
    ("carol", ["NICK alice"]),                      # 433
    ("carol", ["NICK 1carol"]),                     # 432
    ("carol", ["FROBNICATE #test"]),                # 421
    ("alice", ["JOIN #test"]),
    ("bob", ["JOIN #test"]),
    ("alice", ["PRIVMSG #test :hello, channel"]),
    ("bob", ["PRIVMSG alice :hello, alice"]),
    ("bob", ["NOTICE #test :a notice"]),
    ("carol", ["PRIVMSG #test :from outside"]),     # 404 (+n)
    ("carol", ["PRIVMSG nobody :anyone?"]),         # 401
    ("carol", ["PART #nowhere"]),                   # 403
    ("carol", ["PART #test"]),                      # 442
    ("carol", ["TOPIC"]),                           # 461
    ("carol", ["JOIN"]),                            # 461
    ("bob", ["TOPIC #test :bob's topic"]),          # 482 (+t)
    ("bob", ["MODE #test +m"]),                     # 482
    ("alice", ["TOPIC #test :the topic"]),
    ("bob", ["TOPIC #test"]),
    ("alice", ["MODE #test +m"]),
    ("bob", ["PRIVMSG #test :muted?"]),             # 404 (+m)
    ("alice", ["MODE #test -m"]),
    ("alice", ["MODE #test +o bob"]),
    ("carol", ["PRIVMSG"]),                         # 411
    ("carol", ["PRIVMSG alice"]),                   # 412
    ("carol", ["NICK"]),                            # 431
    ("carol", ["USER carol 0 * :again"]),           # 462
    ("carol", ["ISON alice nobody bob"]),
    ("alice", ["AWAY :out to lunch"]),
    ("carol", ["PRIVMSG alice :there?"]),           # 301
    ("alice", ["AWAY"]),
    ("carol", ["NAMES #test"]),
    ("alice", ["JOIN #side"]),
    ("alice", ["MODE #side +i"]),
    ("carol", ["JOIN #side"]),                      # 473
    ("carol", ["INVITE alice #side"]),              # 442
    ("alice", ["INVITE carol #side"]),
    ("carol", ["JOIN #side"]),
    ("carol", ["TOPIC #side"]),                     # 331
    ("alice", ["MODE #side +v carol"]),
    ("carol", ["MODE #side +m"]),                   # 482
    ("alice", ["MODE #side -i"]),
    ("alice", ["MODE #side +l 2"]),
    ("bob", ["JOIN #side"]),                        # 471
    ("alice", ["MODE #side -l"]),
    ("alice", ["MODE #side +b bob!*@*"]),
    ("bob", ["JOIN #side"]),                        # 474
    ("carol", ["PART #side"]),
    ("bob", ["JOIN #x1,#x2"]),
    ("bob", ["PART #x1,#x2"]),
    ("bob", ["NICK robert"]),
    ("alice", ["PRIVMSG robert :new name"]),
    ("alice", ["PRIVMSG bob :old name"]),           # 401
    ("robert", ["MODE #test +i"]),
    ("carol", ["JOIN #test"]),                      # 473
    ("robert", ["MODE #test -i"]),
    ("alice", ["MODE #test +k sesame"]),
    ("carol", ["JOIN #test"]),                      # 475
    ("carol", ["JOIN #test wrong"]),                # 475
    ("carol", ["JOIN #test sesame"]),
    ("carol", ["PRIVMSG #test :hello, all"]),
    ("carol", ["TOPIC #test :carol's topic"]),      # 482
    ("carol", ["KICK #test alice"]),                # 482
    ("robert", ["KICK #test carol :out you go"]),
    ("carol", ["PRIVMSG #test :still here?"]),      # 404
    ("carol", ["KICK #test robert"]),               # 442
    ("alice", ["MODE #test -o robert"]),
    ("robert", ["PART #test :off for a while"]),
    ("robert", ["JOIN #test sesame"]),
    ("robert", ["KICK #test alice"]),               # 482
    ("alice", ["QUIT :goodbye"]),
    ("robert", ["PRIVMSG #test :alone"]),
    ("carol", ["QUIT"]),
]
NICKS = ["alice", "bob", "carol"]


def run_session(port, server):
    """Runs SESSION against 127.0.0.1:port; returns per step a dict of
    nick -> normalised lines (nicks by their first name)."""
    clients = {}  # each connects at its first step, so that none waits unregistered
    alias = {}  # current nick -> first nick
    for n in NICKS:
        alias[n] = n
    out = []
    try:
        for actor, lines in SESSION:
            who = alias[actor]
            if who not in clients:
                clients[who] = Client(port, who)
            c = clients[who]
            if re.match(r"(PART \S+|QUIT) :", lines[-1]):
                time.sleep(max(0.0, c.since + 1.5 - time.time()))
            c.send(*lines)
            got = {}
            if lines[-1].startswith("QUIT"):
                got[who] = c.until_closed()
            else:
                got[who] = c.sync()
            for n, other in clients.items():
                if n != who and not other.closed:
                    got[n] = other.sync()
            for n, raw in got.items():
                for line in raw:
                    src, cmd, params = parse(line)
                    if cmd == "NICK" and src and "!" in src and params:
                        old = src.split("!")[0]
                        if old in alias and n == alias[old]:
                            alias[params[-1]] = alias.pop(old)
            step = {}
            for n in NICKS:
                if n in got:
                    step[n] = [x for x in (normalise(line, server) for line in got[n]) if x]
            out.append(step)
    finally:
        for c in clients.values():
            c.close()
    return out


def server_name(port):
    """The name a server gives itself: the source of its 001 (read on a
    connection of its own, left at once)."""
    c = Client(port, "probe")
    c.send("NICK probe", "USER probe 0 * :probe")
    deadline = time.time() + WAIT
    while True:
        for line in c._take_lines():
            src, cmd, _ = parse(line)
            if cmd == "001":
                c.send("QUIT")
                c.close()
                return src
        c._read(deadline)


class Hybrid:
    """ircd-hybrid in the foreground on a free loopback port, from a
    configuration of its own in a temporary directory; killed on exit."""

    def __init__(self):
        if not os.access(HYBRID, os.X_OK):
            raise AssertionError(f"{HYBRID} is missing: install ircd-hybrid (scripts/deps.sh)")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="eddy-test-hybrid-")
        d = self.dir
        with open(os.path.join(d, "motd"), "w") as f:
            f.write("a test server\n")
        with open(os.path.join(d, "ircd.conf"), "w") as f:
            f.write(f"""
serverinfo {{
  name = "hybrid.test"; description = "test"; network_name = "test";
  hub = no; default_max_clients = 100; max_nick_length = 15; max_topic_length = 300;
}};
admin {{ name = "test"; description = "test"; email = "<test@localhost>"; }};
class {{
  name = "users"; ping_time = 90 seconds; number_per_ip_local = 100;
  number_per_ip_global = 100; max_number = 100; cidr_bitlen_ipv4 = 32;
  number_per_cidr = 100; sendq = 100 kbytes; recvq = 2560 bytes;
}};
listen {{ host = "127.0.0.1"; port = {self.port}; }};
auth {{ user = "*@*"; class = "users"; flags = can_flood; }};
motd {{ mask = "*"; file = "{d}/motd"; }};
general {{
  disable_auth = yes; throttle_time = 0; ping_cookie = no;
  invisible_on_connect = no; anti_spam_exit_message_time = 0;
  max_nick_changes = 100; short_motd = no;
}};
modules {{
  path = "/usr/lib/ircd-hybrid/modules";
  path = "/usr/lib/ircd-hybrid/modules/autoload";
}};
log {{ use_logging = no; }};
""")
        argv = [HYBRID, "-foreground", "-configfile", f"{d}/ircd.conf",
                "-pidfile", f"{d}/ircd.pid", "-logfile", f"{d}/ircd.log",
                "-klinefile", f"{d}/kline.db", "-dlinefile", f"{d}/dline.db",
                "-xlinefile", f"{d}/xline.db", "-resvfile", f"{d}/resv.db"]
        drop = None
        if os.getuid() == 0:  # it will not run as root
            os.chown(d, 65534, 65534)
            os.chown(os.path.join(d, "motd"), 65534, 65534)

            def drop():
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
        self.log = tempfile.TemporaryFile(mode="w+")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                  preexec_fn=drop, cwd=d)
        deadline = time.time() + WAIT
        while True:
            if self.p.poll() is not None:
                raise AssertionError(f"ircd-hybrid exited ({self.p.returncode}): {self.stderr()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.time() > deadline:
                    self.close()
                    raise AssertionError(f"ircd-hybrid did not listen within {WAIT} s: "
                                         + self.stderr())
                time.sleep(0.05)

    def stderr(self):
        self.log.seek(0)
        text = self.log.read()
        try:
            with open(os.path.join(self.dir, "ircd.log")) as f:
                text += f.read()
        except OSError:
            pass
        return text

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def describe(i):
    actor, lines = SESSION[i]
    return f"step {i + 1}: {actor}: " + " | ".join(lines)


def show(side):
    return "\n".join(f"      {n}: {side.get(n, '(closed)')}" for n in NICKS if n in side) or "      -"


sessions = {}


@case("ircd-hybrid runs the session")
def _():
    h = Hybrid()
    try:
        sessions["hybrid"] = run_session(h.port, server_name(h.port))
    finally:
        h.close()


@case("eddy irc runs the session")
def _():
    s = Server(EDDY, "irc", "--name", "irc.test")
    try:
        sessions["eddy"] = run_session(s.port, server_name(s.port))
        s.p.send_signal(signal.SIGTERM)
        code, log = s.stop(signal_it=False)
        if code != 0 or SANITIZER.search(log):
            raise AssertionError(f"eddy irc exited {code}: {log}")
    finally:
        s.__exit__(None, None, None)


if "hybrid" in sessions and "eddy" in sessions:
    for i in range(len(SESSION)):
        @case(describe(i))
        def _(i=i):
            h, e = sessions["hybrid"][i], sessions["eddy"][i]
            if h != e:
                raise AssertionError("the servers differ:\n    ircd-hybrid:\n" + show(h)
                                     + "\n    eddy irc:\n" + show(e))

report()
