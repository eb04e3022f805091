#!/usr/bin/env python3
"""`eddy irc` as IRC clients meet it, through raw sockets: registration
(NICK, USER, PASS, CAP with multi-prefix and server-time, ISUPPORT, the
MOTD); every command of the issue and its error numerics, as RFC 2812, the
Modern IRC documents and ircd-hybrid give them; rfc1459 case mapping;
PING both ways and the ping timeout; line framing (long lines, lines in
pieces, bare LF); TLS; 1,000 clients in 50 channels; a flooder, a client
that never reads and garbage bytes while the others are still served; a
graceful stop on SIGTERM with no sanitizer report.

Usage: test_irc.py PATH_TO_EDDY. Ends with "passed=P failed=F".

With IRC_TEST_PORT=N in the environment the cases run against a server
already listening on 127.0.0.1:N (another ircd, to check the expectations
themselves); the cases that need an eddy of their own are then skipped.
IRC_TEST_ONLY=TEXT runs only the cases whose name holds TEXT.
"""
import contextlib
import itertools
import os
import re
import resource
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import Server, cert, free_port, report, skipping  # noqa: E402
from irc_client import TIME_TAG, Client, Swarm, isupport, names_of, pump  # noqa: E402

EDDY = sys.argv[1]
NAME = "irc.test.local"
EXTERNAL = os.environ.get("IRC_TEST_PORT")
SANITIZER = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")


ONLY = os.environ.get("IRC_TEST_ONLY")  # run only the cases whose name has this


def case(name):
    if ONLY and ONLY not in name:
        return lambda fn: fn
    return common.case(name)


def irc(*extra, **kw):
    return Server(EDDY, "irc", "--name", NAME, *extra, **kw)


def own_server():
    """Wraps the cases that start an eddy irc with options of their own."""
    if EXTERNAL:
        return skipping("needs an eddy irc of its own (IRC_TEST_PORT is set)")
    return contextlib.nullcontext()


class External:
    port = int(EXTERNAL or 0)


# The server most cases share: each case uses nicks and channels of its own.
S = External() if EXTERNAL else irc()

_seq = itertools.count(1)


def nick(prefix="n"):
    """A fresh nick, at most 9 characters (RFC 1459's NICKLEN)."""
    return f"{prefix[:5]}{next(_seq)}"


def chan(prefix="c"):
    return f"#{prefix}{next(_seq)}"


def lower(s):
    """rfc1459 case mapping."""
    return s.lower().translate(str.maketrans("[]\\~", "{}|^"))


def same(a, b):
    return lower(a) == lower(b)


def num(code, *args):
    """A predicate: numeric `code` whose parameters after the target nick
    begin with args (compared with the case mapping)."""
    def pred(m):
        return (m.command == code and len(m.params) > len(args)
                and all(same(p, a) for p, a in zip(m.params[1:], args)))
    return pred


def cmd(command, *args, src=None):
    """A predicate: `command` from src (a nick) whose parameters begin with args."""
    def pred(m):
        return (m.command == command and (src is None or same(m.nick, src))
                and len(m.params) >= len(args)
                and all(same(p, a) for p, a in zip(m.params, args)))
    return pred


def errors(msgs):
    """The error numerics (400 to 599) among msgs."""
    return [m for m in msgs if m.command.isdigit() and 400 <= int(m.command) < 600]


class Clients:
    """The clients of one case, closed at its end."""

    def __init__(self, port=None):
        self.port = port or S.port
        self.all = []

    def client(self, port=None, **kw):
        c = Client(port or self.port, **kw)
        self.all.append(c)
        return c

    def user(self, prefix="u", caps=None, **kw):
        """A registered client with a fresh nick."""
        c = self.client(**kw)
        c.register(nick(prefix), caps=caps)
        return c

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for c in self.all:
            c.close()


def join(c, channel, key=None):
    """Joins and reads to the end of NAMES; returns the messages read."""
    c.send(f"JOIN {channel}" + (f" {key}" if key else ""))
    return c.collect(num("366", channel), desc=f"366 for {channel}")


def stopped_cleanly(srv, clients=None):
    """SIGTERM, exit 0, no sanitizer report; the clients are closed first
    (one that does not read would hold the server for its --grace)."""
    for c in clients.all if clients else ():
        c.close()
    rc, log = srv.stop()
    assert rc == 0, f"exit {rc}: {log[-2000:]}"
    assert not SANITIZER.search(log), log[-4000:]


# ---- Registration ----

@case("registration: 001 to 004, 005 with the ISUPPORT tokens, 422 without a MOTD")
def _():
    with Clients() as p:
        c = p.client()
        n = nick("reg")
        msgs = c.register(n)
        cmds = [m.command for m in msgs]
        for code in ("001", "002", "003", "004", "005"):
            assert code in cmds, (code, msgs)
        assert (cmds.index("001") < cmds.index("002") < cmds.index("003")
                < cmds.index("004") < cmds.index("005")), cmds
        assert msgs[-1].command == "422", msgs[-1]
        assert "375" not in cmds and "376" not in cmds
        welcome = msgs[cmds.index("001")]
        assert welcome.param(0) == n and n in welcome.last, welcome
        if not EXTERNAL:
            assert all(m.source == NAME for m in msgs if m.command.isdigit()), msgs
        myinfo = msgs[cmds.index("004")]
        assert myinfo.param(1) == welcome.source and len(myinfo.params) >= 5, myinfo
        tok = isupport(msgs)
        assert tok.get("CASEMAPPING") == "rfc1459", tok
        assert "#" in (tok.get("CHANTYPES") or ""), tok
        assert tok.get("PREFIX") == "(ov)@+", tok
        for k in ("NICKLEN", "CHANNELLEN", "TOPICLEN"):
            assert k in tok and int(tok[k]) > 0, (k, tok)
        assert int(tok["NICKLEN"]) >= 9, tok
        assert int(tok.get("MODES") or 1) >= 1, tok
        modes = (tok.get("CHANMODES") or "").split(",")
        assert len(modes) == 4, tok
        assert "b" in modes[0] and "k" in modes[1] and "l" in modes[2], modes
        assert set("imnt") <= set(modes[3]), modes


with own_server():
    @case("--motd FILE: 375, a 372 per line and 376, at registration and on MOTD; SIGHUP rereads it")
    def _():
        with tempfile.NamedTemporaryFile("w", suffix=".motd") as f:
            f.write("Welcome to the test network\n\nthird line: rules\n")
            f.flush()
            with irc("--motd", f.name) as srv, Clients(srv.port) as p:
                c = p.client()
                for msgs in (c.register(nick("motd")), None):
                    if msgs is None:
                        c.send("MOTD")
                        msgs = c.collect(["376", "422"])
                    cmds = [m.command for m in msgs]
                    assert "422" not in cmds and cmds[-1] == "376", msgs
                    assert "375" in cmds, msgs
                    lines = [m.last for m in msgs if m.command == "372"]
                    assert len(lines) == 3, lines
                    assert lines[0].endswith("Welcome to the test network"), lines
                    assert lines[2].endswith("third line: rules"), lines
                # SIGHUP rereads the file: the clients that come after see
                # the new one.
                with open(f.name, "w") as g:
                    g.write("a new day\n")
                srv.p.send_signal(signal.SIGHUP)
                deadline = time.monotonic() + 5
                while True:
                    d = p.client()
                    lines = [m.last for m in d.register(nick("motd")) if m.command == "372"]
                    d.close()
                    if len(lines) == 1 and lines[0].endswith("a new day"):
                        break
                    assert time.monotonic() < deadline, f"SIGHUP: the MOTD is still {lines}"
                stopped_cleanly(srv, p)


with own_server():
    @case("--motd: a file that cannot be read stops the start (exit 1); on SIGHUP the old MOTD stays")
    def _():
        missing = os.path.join(tempfile.gettempdir(), f"eddy-no-such-motd-{os.getpid()}")
        r = subprocess.run([EDDY, "irc", "--listen", "tcp:0", "--motd", missing],
                           capture_output=True, timeout=10)
        assert r.returncode == 1 and b"--motd" in r.stderr and b"No such file" in r.stderr, r
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "motd")
            with open(path, "w") as f:
                f.write("the first day\n")
            with irc("--motd", path) as srv, Clients(srv.port) as p:
                os.unlink(path)
                srv.p.send_signal(signal.SIGHUP)
                assert srv.wait_log("the old MOTD stays"), srv.stderr()
                c = p.client()
                lines = [m.last for m in c.register(nick("motd")) if m.command == "372"]
                assert len(lines) == 1 and lines[0].endswith("the first day"), lines
                stopped_cleanly(srv, p)


with own_server():
    @case("bad usage: each wrong option exits 2 and names it")
    def _():
        for args, text in [([], b"--listen"),
                           (["--listen", "tcp:0", "--bogus"], b"unknown option '--bogus'"),
                           (["--listen", "tcp:0", "--name", "a b"], b"--name"),
                           (["--listen", "tcp:0", "--password", ""], b"--password"),
                           (["--listen", "tcp:0", "--max-clients", "0"], b"--max-clients '0'"),
                           (["--listen", "tcp:0", "--ping-timeout", "0"], b"--ping-timeout"),
                           (["--listen", "tcp:0", "--motd"], b"--motd")]:
            r = subprocess.run([EDDY, "irc", *args], capture_output=True, timeout=10)
            assert r.returncode == 2 and text in r.stderr, (args, r)
        r = subprocess.run([EDDY, "irc", "--help"], capture_output=True, timeout=10)
        assert r.returncode == 0 and b"--ping-timeout" in r.stdout, r


@case("commands before registration get 451; registration still works after")
def _():
    with Clients() as p:
        c = p.client()
        for line in ("JOIN #early", "PRIVMSG someone :hi", "WHOIS someone", "MODE #early"):
            c.send(line)
            m = c.expect("451", desc=f"451 for {line!r}")
            assert m.param(0) == "*", m
        msgs = c.register(nick("late"))
        assert any(m.command == "001" for m in msgs)


@case("USER again after registration: 462; PASS after registration: 462")
def _():
    with Clients() as p:
        c = p.user("dup")
        c.send("USER other 0 * :Other")
        c.expect(num("462"))
        c.send("PASS whatever")
        c.expect(num("462"))
        c.sync()


@case("missing parameters: 461 naming the command (431 for NICK, 411/412 for PRIVMSG)")
def _():
    with Clients() as p:
        pre = p.client()
        pre.send("USER onlyone")
        m = pre.expect("461")
        assert m.param(0) == "*" and m.param(1).upper() == "USER", m
        c = p.user("miss")
        for line in ("JOIN", "PART", "TOPIC", "KICK #x", "INVITE somebody", "MODE", "ISON"):
            c.send(line)
            m = c.expect("461", desc=f"461 for {line!r}")
            assert m.param(0) == c.nick and m.param(1).upper() == line.split()[0], (line, m)
        c.send("NICK")
        c.expect("431")
        c.send("PRIVMSG")
        c.expect("411")
        c.send(f"PRIVMSG {c.nick}")
        c.expect("412")
        c.send(f"PRIVMSG {c.nick} :")
        c.expect("412")
        c.sync()


@case("WHOIS without a nick: 431 (RFC 2812, as ircd-hybrid answers)")
def _():
    with Clients() as p:
        c = p.user("wnn")
        c.send("WHOIS")
        m = c.expect(["431", "461"])
        assert m.command == "431", m
        c.sync()


@case("erroneous nicks: 432, before and after registration")
def _():
    with Clients() as p:
        c = p.client()
        for bad in ("1digit", "#chan", "a,b", "-dash"):
            c.send("NICK " + bad)
            m = c.expect("432", desc=f"432 for {bad!r}")
        c.register(nick("good"))
        c.send("NICK 9lives")
        m = c.expect("432")
        assert m.param(1) == "9lives", m
        c.send("NICK :spa ce")
        c.expect("432")
        c.sync()


@case("nick in use: 433, with the rfc1459 case mapping ([]\\ equal {}|); channel names too")
def _():
    with Clients() as p:
        i = next(_seq)
        a = p.client()
        a.register(f"Ab[{i}]\\")
        for other in (f"AB[{i}]\\", f"ab{{{i}}}|", f"aB[{i}}}\\"):
            b = p.client()
            b.send("NICK " + other)
            m = b.expect("433", desc=f"433 for {other!r}")
            assert same(m.param(1), other), m
            b.close()
        c = p.user("taker")
        c.send(f"NICK ab{{{i}}}|")
        m = c.expect("433")
        assert m.param(0) == c.nick, m
        # Channel names compare the same way.
        a.send(f"JOIN #Ch[{i}]")
        a.expect(num("366", f"#Ch[{i}]"))
        msgs = join(c, f"#cH{{{i}}}")
        assert sorted(names_of(msgs)) == sorted(["@" + a.nick, c.nick]), msgs
        m = a.expect(cmd("JOIN", src=c.nick))
        assert same(m.param(0), f"#ch[{i}]"), m
        # The holder may change the case of its own nick.
        a.send(f"NICK AB{{{i}}}|")
        a.expect(cmd("NICK", f"AB{{{i}}}|"))


with own_server():
    @case("--password: PASS right registers; wrong gets 464 and the connection is closed")
    def _():
        with irc("--password", "s3cret") as srv, Clients(srv.port) as p:
            good = p.client()
            msgs = good.register(nick("pass"), password="s3cret")
            assert any(m.command == "001" for m in msgs)
            bad = p.client()
            bad.send("PASS wrong", "NICK " + nick("pass"), "USER u 0 * :R")
            msgs = bad.expect_closed()
            cmds = [m.command for m in msgs]
            assert "464" in cmds and "001" not in cmds, msgs
            none = p.client()
            none.send("NICK " + nick("pass"), "USER u 0 * :R")
            msgs = none.expect_closed()
            assert "001" not in [m.command for m in msgs], msgs
            good.sync()
            stopped_cleanly(srv, p)


with own_server():
    @case("--max-clients: one more is turned away with ERROR; room again once one leaves")
    def _():
        with irc("--max-clients", "2") as srv, Clients(srv.port) as p:
            a, b = p.user("mxa"), p.user("mxb")
            c = p.client()
            with contextlib.suppress(OSError):
                c.send("NICK " + nick("mxc"), "USER u 0 * :R")
            msgs = c.expect_closed()
            assert not any(m.command == "001" for m in msgs), msgs
            assert any(m.command == "ERROR" for m in msgs), msgs
            b.send("QUIT")
            b.expect_closed()
            a.sync()
            deadline = time.monotonic() + 5
            while True:  # the server may take a moment to see b gone
                d = p.client()
                with contextlib.suppress(OSError):
                    d.send("NICK " + nick("mxd"), "USER u 0 * :R")
                m = d.expect(["001", "ERROR"])
                if m.command == "001":
                    break
                d.close()
                assert time.monotonic() < deadline, "no room after a client left"
            stopped_cleanly(srv, p)


@case("CAP LS 302, REQ (ACK and NAK), END: registration waits for END")
def _():
    with Clients() as p:
        c = p.client()
        c.send("CAP LS 302")
        caps = []
        while True:
            m = c.expect(cmd("CAP"))
            assert m.param(1).upper() == "LS", m
            caps += m.last.split()
            if m.param(2) != "*":
                break
        names = {x.split("=")[0] for x in caps}
        assert {"multi-prefix", "server-time"} <= names, caps
        n = nick("cap")
        c.send("NICK " + n, "USER u 0 * :Real")
        c.send("CAP REQ :multi-prefix server-time")
        msgs = c.collect(cmd("CAP"))
        assert "001" not in [m.command for m in msgs], msgs
        assert msgs[-1].param(1).upper() == "ACK", msgs[-1]
        assert set(msgs[-1].last.split()) == {"multi-prefix", "server-time"}, msgs[-1]
        c.send("CAP REQ :no-such-capability")
        msgs = c.collect(cmd("CAP"))
        assert "001" not in [m.command for m in msgs], msgs
        assert msgs[-1].param(1).upper() == "NAK", msgs[-1]
        assert msgs[-1].last.strip() == "no-such-capability", msgs[-1]
        # A request is all or nothing.
        c.send("CAP REQ :-server-time no-such-capability")
        m = c.expect(cmd("CAP"))
        assert m.param(1).upper() == "NAK", m
        c.send("CAP END")
        msgs = c.collect(["376", "422"])
        assert msgs[0].command != "CAP" and any(m.command == "001" for m in msgs), msgs
        # server-time stayed on: the server's messages carry @time.
        other = p.user("capo")
        other.send(f"PRIVMSG {n} :timed")
        m = c.expect(cmd("PRIVMSG", n, "timed"))
        stamp = m.tags.get("time", "")
        assert TIME_TAG.match(stamp), m
        when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        assert abs((datetime.now(timezone.utc) - when).total_seconds()) < 30, stamp
        # and a client without it gets no tags.
        c.send(f"PRIVMSG {other.nick} :untimed")
        m = other.expect(cmd("PRIVMSG", other.nick, "untimed"))
        assert not m.tags and not m.raw.startswith("@"), m


@case("CAP after registration: LS and REQ work, END changes nothing")
def _():
    with Clients() as p:
        c = p.user("lcap")
        c.send("CAP LS")
        m = c.expect(cmd("CAP"))
        assert m.param(1).upper() == "LS", m
        c.send("CAP REQ :server-time")
        m = c.expect(cmd("CAP"))
        assert m.param(1).upper() == "ACK", m
        c.send("CAP END")
        msgs = c.sync()
        assert not errors(msgs) and not any(m.command == "001" for m in msgs), msgs


@case("multi-prefix: NAMES shows @+nick to a client that asked for it, @nick to others")
def _():
    with Clients() as p:
        ch = chan("mp")
        a = p.user("mpa", caps=["multi-prefix"])
        join(a, ch)
        a.send(f"MODE {ch} +v {a.nick}")
        a.expect(cmd("MODE", ch))
        a.send(f"NAMES {ch}")
        names = names_of(a.collect(num("366", ch)))
        assert f"@+{a.nick}" in names, names
        b = p.user("mpb")
        names = names_of(join(b, ch))
        assert f"@{a.nick}" in names and b.nick in names, names
        a.send(f"WHO {ch}")
        who = [m for m in a.collect(num("315", ch)) if m.command == "352"]
        mine = [m for m in who if m.param(5) == a.nick]
        assert mine and "@+" in mine[0].param(6), who


# ---- PING and the ping timeout ----

@case("PING from a client: PONG with its token; PING without one: 409")
def _():
    with Clients() as p:
        c = p.user("ping")
        c.send("PING :some token")
        m = c.expect(cmd("PONG"))
        assert m.last == "some token", m
        c.send("PING")
        c.expect("409")
        c.sync()


with own_server():
    @case("--ping-timeout: a silent client is PINGed, then dropped; its channel sees 'Ping timeout'; an unregistered one is dropped")
    def _():
        with irc("--ping-timeout", "1") as srv, Clients(srv.port) as p:
            ch = chan("pt")
            silent = p.client(pong=False)
            silent.register(nick("mute"))
            join(silent, ch)
            peer = p.user("live")
            join(peer, ch)
            lurker = p.client()  # connects and never registers
            lurker.send("NICK " + nick("lurk"))
            seen = {"ping": 0, "closed": None, "error": None, "quit": None, "lurker": None}
            start = time.monotonic()

            def until(c, m):
                if c is silent:
                    if m is None:
                        seen["closed"] = time.monotonic() - start
                    elif m.command == "PING":
                        seen["ping"] += 1
                    elif m.command == "ERROR":
                        seen["error"] = m
                elif c is peer and m is not None and cmd("QUIT", src=silent.nick)(m):
                    seen["quit"] = m
                elif c is lurker and m is None:
                    seen["lurker"] = time.monotonic() - start
                return None not in (seen["closed"], seen["quit"], seen["lurker"])

            # All read at once: the peer answers its PINGs meanwhile.
            pump([silent, peer, lurker], until, 8, "the silent and the unregistered dropped")
            assert seen["lurker"] < 5, seen
            assert seen["ping"] >= 1 and seen["error"], seen
            assert seen["closed"] < 5, seen
            assert "ping timeout" in seen["quit"].last.lower(), seen["quit"]
            # The peer, answering its PINGs, stays.
            end = time.monotonic() + 2.5
            pump([peer], lambda c, m: time.monotonic() > end, 5)
            assert peer.pings >= 2 and not peer.eof, peer.pings
            peer.sync()
            stopped_cleanly(srv, p)


# ---- Channels ----

@case("JOIN: several at once, echoed with the full source; the first is op; peers see it")
def _():
    with Clients() as p:
        c1, c2 = chan("j"), chan("j")
        a = p.user("ja")
        a.send(f"JOIN {c1},{c2}")
        for ch in (c1, c2):
            m = a.expect(cmd("JOIN", ch))
            assert m.source.startswith(a.nick + "!") and "@" in m.source, m
            msgs = a.collect(num("366", ch))
            assert names_of(msgs, ch) == ["@" + a.nick], msgs
        b = p.user("jb")
        msgs = join(b, c1)
        assert sorted(names_of(msgs, c1)) == sorted(["@" + a.nick, b.nick]), msgs
        m = a.expect(cmd("JOIN", c1, src=b.nick))
        assert m.user.lstrip("~") == "u" and m.host, m
        # Joining again changes nothing and is not echoed to the peers.
        b.send(f"JOIN {c1}")
        b.sync()
        assert not [m for m in a.sync() if m.command == "JOIN"]


@case("JOIN with keys, and JOIN 0 parts every channel")
def _():
    with Clients() as p:
        k1, k2, free = chan("k"), chan("k"), chan("k")
        a = p.user("ka")
        for ch, key in ((k1, "one"), (k2, "two")):
            join(a, ch)
            a.send(f"MODE {ch} +k {key}")
            a.expect(cmd("MODE", ch))
        join(a, free)
        b = p.user("kb")
        b.send(f"JOIN {k1},{k2},{free} one,two")
        for ch in (k1, k2, free):
            b.expect(num("366", ch))
        b.send("JOIN 0")
        parted = set()
        while len(parted) < 3:
            m = a.expect(cmd("PART", src=b.nick))
            parted.add(lower(m.param(0)))
        assert parted == {lower(k1), lower(k2), lower(free)}, parted
        a.send(f"NAMES {k1}")
        assert b.nick not in names_of(a.collect(num("366", k1)))


@case("PART with a reason; 442 when not on it, 403 when it does not exist")
def _():
    with Clients() as p:
        ch = chan("p")
        a, b = p.user("pa"), p.user("pb")
        join(a, ch)
        join(b, ch)
        b.send(f"PART {ch} :see you later")
        m = a.expect(cmd("PART", ch, src=b.nick))
        assert m.last == "see you later", m
        b.expect(cmd("PART", ch, src=b.nick))
        b.send(f"PART {ch}")
        b.expect(num("442", ch))
        c1, c2 = chan("p"), chan("p")
        join(a, c1)
        join(a, c2)
        join(b, c1)
        join(b, c2)
        b.send(f"PART {c1},{c2} :both")
        for x in (c1, c2):
            m = a.expect(cmd("PART", x, src=b.nick))
            assert m.last == "both", m
        b.send("PART #nosuchchannel")
        b.expect(num("403", "#nosuchchannel"))
        b.sync()


@case("PRIVMSG and NOTICE to a channel and to a nick; the sender does not get its own")
def _():
    with Clients() as p:
        ch = chan("m")
        a, b, c = p.user("ma"), p.user("mb"), p.user("mc")
        join(a, ch)
        join(b, ch)
        a.expect(cmd("JOIN", ch, src=b.nick))
        a.send(f"PRIVMSG {ch} :hello all")
        m = b.expect(cmd("PRIVMSG", ch, src=a.nick))
        assert m.last == "hello all" and m.user.lstrip("~") == "u" and m.host, m
        a.send(f"NOTICE {ch} :a notice")
        m = b.expect(cmd("NOTICE", ch, src=a.nick))
        assert m.last == "a notice", m
        assert not [m for m in a.sync() if m.command in ("PRIVMSG", "NOTICE")]
        a.send(f"PRIVMSG {c.nick.upper()} :just you")
        m = c.expect(cmd("PRIVMSG", src=a.nick))
        assert same(m.param(0), c.nick) and m.last == "just you", m
        a.send(f"NOTICE {c.nick} :noticed")
        m = c.expect(cmd("NOTICE", c.nick, src=a.nick))
        assert m.last == "noticed", m
        assert not [m for m in b.sync() if m.command in ("PRIVMSG", "NOTICE")]
        # Text with colons and spaces arrives whole.
        a.send(f"PRIVMSG {ch} :: starts with a colon  and  spaces ")
        m = b.expect(cmd("PRIVMSG", ch, src=a.nick))
        assert m.last == ": starts with a colon  and  spaces ", m


@case("PRIVMSG errors: 401 no such nick, 401/403 no such channel; NOTICE gets no error")
def _():
    with Clients() as p:
        a = p.user("ea")
        a.send("PRIVMSG nosuchnick :x")
        m = a.expect("401")
        assert m.param(1) == "nosuchnick", m
        a.send("PRIVMSG #nosuchchan :x")
        m = a.expect(["401", "403"])
        assert m.param(1) == "#nosuchchan", m
        a.send("NOTICE nosuchnick :x", "NOTICE #nosuchchan :x")
        msgs = a.sync()
        assert not errors(msgs), msgs


@case("NAMES: 353 and 366; a channel that does not exist gives 366 alone")
def _():
    with Clients() as p:
        ch = chan("nm")
        a, b = p.user("na"), p.user("nb")
        join(a, ch)
        join(b, ch)
        b.send(f"NAMES {ch}")
        msgs = b.collect(num("366", ch))
        rpl = [m for m in msgs if m.command == "353"]
        assert rpl and rpl[0].param(0) == b.nick and rpl[0].param(1) in "=*@", rpl
        assert sorted(names_of(msgs, ch)) == sorted(["@" + a.nick, b.nick]), msgs
        b.send("NAMES #nosuchnames")
        msgs = b.collect(num("366", "#nosuchnames"))
        assert not [m for m in msgs if m.command == "353"], msgs


@case("TOPIC: 331 unset, set seen by all, 332 and 333; +t needs op (482); 442 off the channel")
def _():
    with Clients() as p:
        ch = chan("t")
        a, b, c = p.user("ta"), p.user("tb"), p.user("tc")
        join(a, ch)
        join(b, ch)
        a.send(f"TOPIC {ch}")
        a.expect(num("331", ch))
        a.send(f"MODE {ch} +t")  # perhaps +t already: no MODE message then
        a.sync()
        a.send(f"TOPIC {ch} :the first topic")
        for x in (a, b):
            m = x.expect(cmd("TOPIC", ch, src=a.nick))
            assert m.last == "the first topic", m
        b.send(f"TOPIC {ch} :not allowed")
        b.expect(num("482", ch))
        b.send(f"TOPIC {ch}")
        m = b.expect(num("332", ch))
        assert m.last == "the first topic", m
        m = b.expect(num("333", ch))
        assert m.param(2).split("!")[0] == a.nick, m
        assert abs(int(m.param(3)) - time.time()) < 60, m
        msgs = join(c, ch)
        m = [m for m in msgs if m.command == "332"]
        assert m and m[0].last == "the first topic", msgs
        a.send(f"MODE {ch} -t")
        a.expect(cmd("MODE", ch))
        b.send(f"TOPIC {ch} :now anyone may")
        m = a.expect(cmd("TOPIC", ch, src=b.nick))
        assert m.last == "now anyone may", m
        outsider = p.user("to")
        outsider.send(f"TOPIC {ch} :from outside")
        outsider.expect(num("442", ch))
        outsider.sync()


@case("WHO a channel and a nick: 352 per member and 315")
def _():
    with Clients() as p:
        ch = chan("w")
        a = p.client()
        a.register(nick("wa"), user="alice", real="Alice Liddell")
        b = p.user("wb")
        join(a, ch)
        join(b, ch)
        b.send(f"WHO {ch}")
        msgs = b.collect(num("315", ch))
        rows = {m.param(5): m for m in msgs if m.command == "352"}
        assert set(rows) == {a.nick, b.nick}, msgs
        r = rows[a.nick]
        assert r.param(0) == b.nick and same(r.param(1), ch), r
        assert r.param(2).lstrip("~") == "alice" and r.param(3), r
        assert r.param(6).startswith("H") and "@" in r.param(6), r
        assert "@" not in rows[b.nick].param(6), rows[b.nick]
        hops, _, real = r.last.partition(" ")
        assert hops.isdigit() and real == "Alice Liddell", r
        b.send(f"WHO {a.nick}")
        msgs = b.collect(num("315", a.nick))
        assert [m.param(5) for m in msgs if m.command == "352"] == [a.nick], msgs


@case("WHOIS: 311 312 319 318; 401 and 318 for an unknown nick")
def _():
    with Clients() as p:
        ch = chan("wi")
        a = p.client()
        a.register(nick("wia"), user="bob", real="Bob the Builder")
        b = p.user("wib")
        join(a, ch)
        b.send(f"WHOIS {a.nick}")
        msgs = b.collect(num("318", a.nick))
        by = {m.command: m for m in msgs}
        for code in ("311", "312", "319"):
            assert code in by, (code, msgs)
        m = by["311"]
        assert m.param(1) == a.nick and m.param(2).lstrip("~") == "bob", m
        assert m.param(4) == "*" and m.last == "Bob the Builder", m
        if not EXTERNAL:
            assert by["312"].param(2) == NAME, by["312"]
        assert "@" + ch in [lower(x) for x in by["319"].last.split()], by["319"]
        b.send("WHOIS nosuchwho")
        msgs = b.collect(num("318", "nosuchwho"))
        assert any(num("401", "nosuchwho")(m) for m in msgs), msgs


@case("LIST: 322 per channel with its count and topic, then 323")
def _():
    with Clients() as p:
        ch, other = chan("l"), chan("l")
        a, b = p.user("la"), p.user("lb")
        join(a, ch)
        join(b, ch)
        join(b, other)
        a.send(f"TOPIC {ch} :listed topic")
        a.expect(cmd("TOPIC", ch))
        a.send("LIST")
        msgs = a.collect("323")
        rows = {lower(m.param(1)): m for m in msgs if m.command == "322"}
        assert lower(ch) in rows and lower(other) in rows, msgs
        assert rows[lower(ch)].param(2) == "2" and rows[lower(ch)].last.endswith("listed topic")
        assert rows[lower(other)].param(2) == "1", rows[lower(other)]
        a.send(f"LIST {ch}")
        msgs = a.collect("323")
        assert [lower(m.param(1)) for m in msgs if m.command == "322"] == [lower(ch)], msgs


@case("ISON: 303 with the nicks online")
def _():
    with Clients() as p:
        a, b = p.user("ia"), p.user("ib")
        a.send(f"ISON {b.nick.upper()} nosuchison {a.nick}")
        m = a.expect("303")
        assert sorted(lower(x) for x in m.last.split()) == sorted([lower(a.nick), lower(b.nick)]), m
        a.send("ISON nosuchison")
        m = a.expect("303")
        assert m.last.strip() == "", m


@case("AWAY: 306, then 301 to whoever messages the nick; AWAY again: 305")
def _():
    with Clients() as p:
        a, b = p.user("aa"), p.user("ab")
        b.send("AWAY :gone fishing")
        b.expect("306")
        a.send(f"PRIVMSG {b.nick} :are you there")
        m = a.expect(num("301", b.nick))
        assert m.last == "gone fishing", m
        b.expect(cmd("PRIVMSG", b.nick, "are you there"))
        b.send("AWAY")
        b.expect("305")
        a.send(f"PRIVMSG {b.nick} :back?")
        assert not [m for m in a.sync() if m.command == "301"]
        b.expect(cmd("PRIVMSG", b.nick, "back?"))


@case("NICK change: seen by the channel's members and the client, not by others")
def _():
    with Clients() as p:
        ch = chan("nc")
        a, b, c = p.user("nca"), p.user("ncb"), p.user("ncc")
        join(a, ch)
        join(b, ch)
        old, new = a.nick, nick("ncn")
        a.send("NICK " + new)
        for x in (a, b):
            m = x.expect(cmd("NICK", src=old))
            assert m.param(0) == new and m.source.startswith(old + "!"), m
        assert not [m for m in c.sync() if m.command == "NICK"]
        assert not [m for m in b.sync() if m.command == "NICK"], "NICK seen twice"
        a.nick = new
        # A peer sharing two channels sees a change once.
        ch2 = chan("nc")
        join(a, ch2)
        join(b, ch2)
        a.send("NICK " + old)
        b.expect(cmd("NICK", old, src=new))
        assert not [m for m in b.sync() if m.command == "NICK"], "NICK seen twice"
        a.expect(cmd("NICK", old, src=new))
        a.send("NICK " + new)
        a.expect(cmd("NICK", new, src=old))
        d = p.client()
        assert any(m.command == "001" for m in d.register(old)), "the old nick is free again"
        d.send(f"PRIVMSG {new} :to the new name")
        a.expect(cmd("PRIVMSG", new, "to the new name"))


@case("QUIT with a reason: the quitter gets ERROR and the end, the channel sees the reason")
def _():
    with Clients() as p:
        ch = chan("q")
        a, b = p.user("qa"), p.user("qb")
        join(a, ch)
        join(b, ch)
        b.send("QUIT :gone for lunch")
        msgs = b.expect_closed()
        assert any(m.command == "ERROR" for m in msgs), msgs
        m = a.expect(cmd("QUIT", src=b.nick))
        assert "gone for lunch" in m.last, m
        a.send(f"NAMES {ch}")
        assert names_of(a.collect(num("366", ch))) == ["@" + a.nick]


@case("KICK: seen by all; 482 for a non-op, 441 not on the channel, 401, 403, 442")
def _():
    with Clients() as p:
        ch = chan("kk")
        a, b, c, d = p.user("kka"), p.user("kkb"), p.user("kkc"), p.user("kkd")
        for x in (a, b, c):
            join(x, ch)
        b.send(f"KICK {ch} {c.nick} :no")
        b.expect(num("482", ch))
        a.send(f"KICK {ch} {c.nick.upper()} :out you go")
        for x in (a, b, c):
            m = x.expect(cmd("KICK", ch, src=a.nick))
            assert same(m.param(1), c.nick) and m.last == "out you go", m
        a.send(f"NAMES {ch}")
        assert c.nick not in names_of(a.collect(num("366", ch)))
        a.send(f"KICK {ch} {d.nick}")
        a.expect(num("441", d.nick, ch))
        a.send(f"KICK {ch} nosuchkick")
        a.expect(["401", "441"])
        a.send(f"KICK #nosuchkick {b.nick}")
        a.expect(num("403", "#nosuchkick"))
        d.send(f"KICK {ch} {b.nick}")
        d.expect(num("442", ch))
        d.sync()


@case("INVITE: 341 and the INVITE message; the invited joins a +i channel, others get 473")
def _():
    with Clients() as p:
        ch = chan("inv")
        a, b, c, d = p.user("iva"), p.user("ivb"), p.user("ivc"), p.user("ivd")
        join(a, ch)
        join(b, ch)
        a.send(f"MODE {ch} +i")
        a.expect(cmd("MODE", ch))
        c.send(f"JOIN {ch}")
        c.expect(num("473", ch))
        b.send(f"INVITE {c.nick} {ch}")
        b.expect(num("482", ch))
        a.send(f"INVITE {c.nick} {ch}")
        m = a.expect(num("341"))
        assert same(m.param(1), c.nick) and same(m.param(2), ch), m
        m = c.expect(cmd("INVITE", src=a.nick))
        assert same(m.param(0), c.nick) and same(m.param(1), ch), m
        join(c, ch)
        d.send(f"JOIN {ch}")
        d.expect(num("473", ch))
        a.send(f"INVITE nosuchinv {ch}")
        a.expect(num("401", "nosuchinv"))
        a.send(f"INVITE {b.nick} {ch}")
        a.expect(num("443", b.nick, ch))
        d.send(f"INVITE {b.nick} {ch}")
        d.expect(num("442", ch))
        d.sync()


# ---- Modes ----

@case("MODE +o and +v: seen by the channel, shown in NAMES; 441, 401, 482")
def _():
    with Clients() as p:
        ch = chan("o")
        a, b, c = p.user("oa"), p.user("ob"), p.user("oc")
        for x in (a, b, c):
            join(x, ch)
        a.send(f"MODE {ch} +o {b.nick}")
        for x in (a, b, c):
            m = x.expect(cmd("MODE", ch, src=a.nick))
            assert m.param(1) == "+o" and same(m.param(2), b.nick), m
        b.send(f"MODE {ch} +v {c.nick}")
        m = a.expect(cmd("MODE", ch, src=b.nick))
        assert m.param(1) == "+v" and same(m.param(2), c.nick), m
        a.send(f"NAMES {ch}")
        names = names_of(a.collect(num("366", ch)))
        assert sorted(names) == sorted(["@" + a.nick, "@" + b.nick, "+" + c.nick]), names
        c.send(f"MODE {ch} +o {c.nick}")
        c.expect(num("482", ch))
        d = p.user("od")
        a.send(f"MODE {ch} +o {d.nick}")
        a.expect(num("441", d.nick, ch))
        a.send(f"MODE {ch} +o nosuchop")
        a.expect(num("401", "nosuchop"))
        a.send(f"MODE {ch} -o {b.nick}")
        m = c.expect(cmd("MODE", ch, src=a.nick))
        assert m.param(1) == "-o", m
        b.send(f"MODE {ch} +m")
        b.expect(num("482", ch))
        b.sync()


@case("MODE +m: only voiced and ops speak (404); +n: outsiders cannot send (404)")
def _():
    with Clients() as p:
        ch = chan("mn")
        a, b, c, out = p.user("mna"), p.user("mnb"), p.user("mnc"), p.user("mno")
        for x in (a, b, c):
            join(x, ch)
        a.send(f"MODE {ch} +mv {b.nick}")
        m = c.expect(cmd("MODE", ch, src=a.nick))
        c.send(f"PRIVMSG {ch} :muted")
        c.expect(num("404", ch))
        b.send(f"PRIVMSG {ch} :voiced speaks")
        m = c.expect(cmd("PRIVMSG", ch, src=b.nick))
        assert m.last == "voiced speaks"
        a.send(f"PRIVMSG {ch} :op speaks")
        c.expect(cmd("PRIVMSG", ch, "op speaks", src=a.nick))
        a.send(f"MODE {ch} -m+n")
        c.expect(cmd("MODE", ch, src=a.nick))
        out.send(f"PRIVMSG {ch} :from outside")
        out.expect(num("404", ch))
        a.send(f"MODE {ch} -n")
        c.expect(cmd("MODE", ch, src=a.nick))
        out.send(f"PRIVMSG {ch} :outside again")
        m = c.expect(cmd("PRIVMSG", ch, src=out.nick))
        assert m.last == "outside again", m
        assert not errors(out.sync())


@case("MODE +k: 475 without the key or with a wrong one; +l: 471 when full; 324 shows them")
def _():
    with Clients() as p:
        ch = chan("kl")
        a, b, c, d = p.user("kla"), p.user("klb"), p.user("klc"), p.user("kld")
        join(a, ch)
        a.send(f"MODE {ch} +kl sesame 2")
        m = a.expect(cmd("MODE", ch))
        a.send(f"MODE {ch}")
        m = a.expect(num("324", ch))
        flags = m.param(2)
        assert flags.startswith("+") and "k" in flags and "l" in flags, m
        assert "sesame" in m.params[3:] and "2" in m.params[3:], m
        b.send(f"JOIN {ch}")
        b.expect(num("475", ch))
        b.send(f"JOIN {ch} wrong")
        b.expect(num("475", ch))
        join(b, ch, "sesame")
        c.send(f"JOIN {ch} sesame")
        c.expect(num("471", ch))
        a.send(f"MODE {ch} -l")
        a.expect(cmd("MODE", ch))
        join(c, ch, "sesame")
        a.send(f"MODE {ch} -k sesame")
        a.expect(cmd("MODE", ch))
        join(d, ch)


@case("MODE +b with wildcard masks: 474 on JOIN, 404 for a banned member; 367 and 368; -b")
def _():
    with Clients() as p:
        ch = chan("b")
        a = p.user("ba")
        i = next(_seq)
        b = p.client()
        b.register(f"bann{i}", user="evil")
        c = p.user("bc")
        d = p.client()
        d.register(f"good{i}", user="nice")
        join(a, ch)
        join(c, ch)
        a.send(f"MODE {ch} +b B?nN*!*@*")  # masks match with the case mapping
        m = a.expect(cmd("MODE", ch))
        assert m.param(1) == "+b" and m.param(2) == "B?nN*!*@*", m
        b.send(f"JOIN {ch}")
        b.expect(num("474", ch))
        a.send(f"MODE {ch} +b *!*evil@*", f"MODE {ch} +b *!*@*.nowhere.invalid")
        a.expect(cmd("MODE", ch, "+b", "*!*@*.nowhere.invalid"))
        a.send(f"MODE {ch} b")
        msgs = a.collect(num("368", ch))
        masks = [m.param(2) for m in msgs if m.command == "367"]
        assert sorted(masks) == sorted(["B?nN*!*@*", "*!*evil@*", "*!*@*.nowhere.invalid"]), msgs
        join(d, ch)  # matches none of them
        # A member who comes to match a ban cannot speak.
        a.send(f"MODE {ch} +b {c.nick}!*@*")
        c.expect(cmd("MODE", ch, "+b", f"{c.nick}!*@*"))
        c.send(f"PRIVMSG {ch} :banned now")
        c.expect(num("404", ch))
        a.send(f"MODE {ch} -b B?nN*!*@*", f"MODE {ch} -b *!*evil@*")
        a.expect(cmd("MODE", ch, "-b", "*!*evil@*"))
        join(b, ch)


@case("MODE: 472 unknown mode, 403 no such channel, 324 for a member, user modes 221 and 502")
def _():
    with Clients() as p:
        ch = chan("um")
        a, b = p.user("uma"), p.user("umb")
        join(a, ch)
        a.send(f"MODE {ch} +y")
        m = a.expect("472")
        assert m.param(1) == "y", m
        a.send("MODE #nosuchmode +m")
        a.expect(num("403", "#nosuchmode"))
        a.send(f"MODE {ch} +nt")
        a.sync()
        a.send(f"MODE {ch}")
        m = a.expect(num("324", ch))
        assert set("nt") <= set(m.param(2)), m
        a.send(f"MODE {a.nick} +i")
        m = a.expect(cmd("MODE", a.nick))
        assert "+i" in m.last or "+i" in m.params, m
        a.send(f"MODE {a.nick}")
        m = a.expect("221")
        assert "i" in m.last, m
        a.send(f"MODE {b.nick} +i")
        a.expect("502")
        a.send(f"MODE {b.nick}")
        a.expect("502")
        a.send("MODE nosuchumode")
        a.expect(num("401", "nosuchumode"))


@case("unknown command: 421; a command on a channel one is not on: 442")
def _():
    with Clients() as p:
        ch = chan("u")
        a, b = p.user("ua"), p.user("ub")
        join(a, ch)
        b.send("FROBNICATE now")
        m = b.expect("421")
        assert m.param(1).upper() == "FROBNICATE", m
        b.send(f"PART {ch}")
        b.expect(num("442", ch))
        b.sync()


# ---- Lines ----

@case("a line over 512 bytes: an error to its sender (417), the connection lives")
def _():
    with Clients() as p:
        ch = chan("long")
        a, b = p.user("lga"), p.user("lgb")
        join(a, ch)
        join(b, ch)
        a.send(f"PRIVMSG {ch} :" + "x" * 600)
        msgs = a.sync()
        assert errors(msgs), f"no error for a 600-byte line: {msgs}"
        a.send(f"PRIVMSG {ch} :short again")
        for m in b.collect(cmd("PRIVMSG", ch, "short again", src=a.nick)):
            assert len(m.raw) <= 510, f"a relayed line over 512 bytes: {len(m.raw)}"
        # 510 bytes is the limit, and allowed; relayed with its source in
        # front, the text may be cut to fit 512 bytes.
        line = f"PRIVMSG {ch} :"
        text = "y" * (510 - len(line))
        a.send(line + text)
        m = b.expect(cmd("PRIVMSG", ch, src=a.nick))
        assert len(m.raw) <= 510 and len(m.last) > 400 and text.startswith(m.last), m
        assert not errors(a.sync())


@case("a line in pieces over several TCP segments, CR LF and bare LF")
def _():
    with Clients() as p:
        ch = chan("seg")
        a, b = p.user("sga"), p.user("sgb")
        join(a, ch)
        join(b, ch)
        a.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        got = []
        for piece in (b"PRIV", b"MSG " + ch.encode(), b" :in ", b"pieces", b"\r", b"\n"):
            # (a bare CR may end the line already, as it does for ircd-hybrid)
            assert not got or piece == b"\n", f"a message before its line was complete: {got}"
            a.send_raw(piece)
            # A round trip through the server between the pieces.
            got += [m for m in b.sync() if m.command == "PRIVMSG"]
        if not got:
            got.append(b.expect(cmd("PRIVMSG", ch, src=a.nick)))
        assert len(got) == 1 and got[0].last == "in pieces", got
        a.send_raw(f"PRIVMSG {ch} :bare lf\nPRIVMSG {ch} :crlf\r\n".encode())
        assert b.expect(cmd("PRIVMSG", ch, src=a.nick)).last == "bare lf"
        assert b.expect(cmd("PRIVMSG", ch, src=a.nick)).last == "crlf"
        # Several lines in one segment, and empty lines between them.
        a.send_raw(f"\r\n\r\nPRIVMSG {ch} :one\r\n\nPRIVMSG {ch} :two\r\n".encode())
        assert b.expect(cmd("PRIVMSG", ch, src=a.nick)).last == "one"
        assert b.expect(cmd("PRIVMSG", ch, src=a.nick)).last == "two"
        assert not errors(a.sync())


# ---- TLS ----

with own_server():
    @case("TLS: a client over a tls: endpoint registers and talks with a plain one")
    def _():
        port = free_port()
        listen = (f"tls:{port}:certKey={cert('server.pem')}:privateKey={cert('server.key')}"
                  ":interface=127.0.0.1")
        plain_port = free_port()
        with irc("--listen", f"tcp:{plain_port}:interface=127.0.0.1", listen=listen,
                 port=port) as srv, Clients(plain_port) as p:
            ctx = ssl.create_default_context(cafile=cert("ca.pem"))
            t = p.client(port=port, ssl_context=ctx, server_hostname="localhost")
            msgs = t.register(nick("tls"))
            assert any(m.command == "001" for m in msgs), msgs
            ch = chan("tls")
            join(t, ch)
            u = p.user("plain")
            join(u, ch)
            t.send(f"PRIVMSG {ch} :over tls")
            assert u.expect(cmd("PRIVMSG", ch, src=t.nick)).last == "over tls"
            u.send(f"PRIVMSG {ch} :in the clear")
            assert t.expect(cmd("PRIVMSG", ch, src=u.nick)).last == "in the clear"
            stopped_cleanly(srv, p)


# ---- Load and hostile clients ----

def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))


with own_server():
    @case("1,000 clients in 50 channels: each channel's messages reach all its members")
    def _():
        n, nch = 1000, 50
        raise_nofile(n + 200)
        chans = [f"#load{k}" for k in range(nch)]
        joined = [False] * n
        got = [set() for _ in range(n)]
        bad = []

        def on(i, m):
            if m is None:
                bad.append((i, "closed"))
            elif m.command == "366":
                joined[i] = True
            elif m.command == "PRIVMSG":
                j = int(m.last.split()[-1])
                if not same(m.param(0), chans[i % nch]) or j % nch != i % nch or j == i:
                    bad.append((i, m.raw))
                got[i].add(j)
            elif m.command == "ERROR" or (errors([m]) and m.command != "422"):
                bad.append((i, m.raw))

        with irc("--max-clients", "5000", nofile=4096) as srv:
            sw = Swarm()
            try:
                start = time.monotonic()
                for i in range(n):
                    sw.connect(srv.port)
                    sw.send(i, f"NICK ld{i}", "USER u 0 * :load", f"JOIN {chans[i % nch]}")
                    if i % 100 == 99:  # keep up with the replies as they come
                        sw.run(on, lambda: bad or all(joined[:i + 1]), 30, "100 more joined")
                sw.run(on, lambda: bad or all(joined), 30, "all joined")
                assert not bad, bad[:5]
                joined_s = time.monotonic() - start
                start = time.monotonic()
                for i in range(n):
                    sw.send(i, f"PRIVMSG {chans[i % nch]} :from {i}")
                per = n // nch - 1
                sw.run(on, lambda: bad or all(len(g) >= per for g in got), 30,
                       "every message delivered")
                assert not bad, bad[:5]
                print(f"  1000 clients registered and joined in {joined_s:.1f} s; "
                      f"{n * per} messages delivered in {time.monotonic() - start:.1f} s; "
                      f"server RSS {srv.rss_kb() // 1024} MiB", file=sys.stderr)
            finally:
                sw.close()
            stopped_cleanly(srv)


with own_server():
    @case("a flooder: throttled to 5 lines a second, kept in order; another's PING answered within 2 s")
    def _():
        with irc() as srv, Clients(srv.port) as p:
            ch = chan("fl")
            f, a, b = p.user("flood"), p.user("fla"), p.user("flb")
            for x in (f, a, b):
                join(x, ch)
            lines = 5000
            data = b"".join(f"PRIVMSG {ch} :flood {k} ".encode() + b"z" * 40 + b"\r\n"
                            for k in range(lines))
            f.sock.setblocking(False)
            sent = 0
            with contextlib.suppress(BlockingIOError):
                while sent < len(data):
                    sent += f.sock.send(data[sent:])
            seen = []  # the flood lines b received, in order
            when = {}  # and when

            def flood_or(pred):
                def p_(m):
                    if m.command == "PRIVMSG" and m.last.startswith("flood "):
                        seen.append(int(m.last.split()[1]))
                        when[seen[-1]] = time.monotonic()
                    return pred(m)
                return p_

            for r in range(4):
                t0 = time.monotonic()
                a.send(f"PING :probe{r}")
                a.expect(cmd("PONG"), timeout=2, desc=f"PONG probe{r} within 2 s")
                delay = time.monotonic() - t0
                assert delay < 2, delay
                a.send(f"PRIVMSG {ch} :still here {r}")
                b.expect(flood_or(cmd("PRIVMSG", ch, f"still here {r}", src=a.nick)), timeout=2)
                b.send(f"PRIVMSG {ch} :b too {r}")
                a.expect(cmd("PRIVMSG", ch, f"b too {r}", src=b.nick), timeout=2)
            assert len(seen) < lines // 2, f"{len(seen)} of {lines} lines delivered at once: no throttle"
            # After the burst, 5 lines a second (as ircd-hybrid): lines 5
            # to 35 take about 6 s, and no second passes without any.
            b.expect(flood_or(lambda m: 35 in when), timeout=15, desc="flood line 35")
            assert seen == list(range(len(seen))), "flood lines lost or out of order"
            rate = 30 / (when[35] - when[5])
            gaps = [round(when[k + 1] - when[k], 2) for k in range(5, 35)]
            assert 4 < rate < 7 and max(gaps) < 1.6, \
                f"the flooder's lines go through at {rate:.1f} a second, not 5; gaps {gaps}"
            f.close()
            stopped_cleanly(srv, p)


with own_server():
    @case("a client that never reads is dropped (SendQ) while the channel keeps receiving")
    def _():
        with irc() as srv, Clients(srv.port) as p:
            ch = chan("sq")
            w = p.user("sqw")
            join(w, ch)
            w.send(f"MODE {ch} -n")
            w.expect(cmd("MODE", ch))
            r = socket.socket()
            r.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            # Small segments: the server's socket buffer, sized by the
            # kernel from the segment size, stays small too, and the send
            # queue is what fills.
            r.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
            r.settimeout(10)
            r.connect(("127.0.0.1", srv.port))
            stuck = Client(srv.port, sock=r)
            p.all.append(stuck)
            stuck.register(nick("stuck"))
            join(stuck, ch)
            w.expect(cmd("JOIN", ch, src=stuck.nick))
            # From here on `stuck` reads nothing. Talkers outside the channel
            # (-n) send it long lines; w reads them all.
            talkers = 100
            raise_nofile(talkers + 200)
            sw = Swarm()
            state = {"quit": None, "after": 0, "reg": 0, "bad": []}
            wi = None

            def on(i, m):
                if i == wi:
                    if m is None:
                        state["bad"].append("the reader was dropped")
                    elif m.command == "QUIT" and same(m.nick, stuck.nick):
                        state["quit"] = m
                    elif m.command == "PRIVMSG" and state["quit"] is not None:
                        state["after"] += 1
                elif m is None:
                    state["bad"].append(f"talker {i} closed")
                elif m.command in ("376", "422"):
                    state["reg"] += 1
                elif m.command == "ERROR" or (errors([m]) and m.command != "422"):
                    state["bad"].append(m.raw)

            try:
                for i in range(talkers):
                    sw.connect(srv.port)
                    sw.send(i, f"NICK sqt{i}", "USER u 0 * :talker")
                sw.run(on, lambda: state["bad"] or state["reg"] == talkers, 20, "talkers registered")
                wi = len(sw)  # w moves into the swarm, its buffer with it
                sw.socks.append(w.sock)
                w.sock.setblocking(False)
                sw.inbuf.append(w.buf)
                sw.outbuf.append(bytearray())
                sw.eof.append(False)
                sw.sel.register(w.sock, 1, wi)
                text = "x" * 400
                for k in range(60):
                    for i in range(talkers):
                        sw.send(i, f"PRIVMSG {ch} :{i} {k} {text}")
                sw.run(on, lambda: state["bad"] or (state["quit"] and state["after"] >= 50), 30,
                       "the stuck client dropped and the channel still served")
                assert not state["bad"], state["bad"][:5]
                assert "sendq" in state["quit"].last.lower(), state["quit"]
            finally:
                sw.socks.pop()  # w's socket is closed by its own Client
                sw.close()
            stopped_cleanly(srv, p)


with own_server():
    @case("garbage bytes (NUL, invalid UTF-8, 10 KB without a newline) crash nothing")
    def _():
        rnd = __import__("random").Random(15)
        with irc() as srv, Clients(srv.port) as p:
            ch = chan("gb")
            peer = p.user("gbp")
            join(peer, ch)
            junk = [
                b"\x00\x00\x00NICK \x00bad\r\n",
                b"\xff\xfe\xfd invalid \xc3\x28 utf-8\r\n",
                b"USER \xff \xff \xff :\xff\xfe\r\n",
                b"NICK gbg\xff\r\nUSER u 0 * :x\r\n",
                f"JOIN {ch}\r\nPRIVMSG {ch} :\xff\xfe\x00 nul and bad bytes\r\n".encode("latin-1"),
                f"PRIVMSG {ch} :\xe2\x82 cut sequence\r\n".encode("latin-1"),
                b"@" + b";" * 5000 + b" PING :tags\r\n",
                b":" + b"\x01" * 300 + b" PRIVMSG\r\n",
                b" \r\n\r\n\n\r \t\r\n",
                b"A" * 10240,
                b"\r\n",
                bytes(rnd.randrange(256) for _ in range(65536)),
                b"\r\n" + b"B" * 20000 + b"\r\n",
            ]
            for variant in range(2):
                g = p.client()
                g.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with contextlib.suppress(OSError):
                    for piece in junk if variant == 0 else [b"".join(junk)]:
                        g.send_raw(piece)
                g.close()
            # The server still answers: a new client, and the old peer.
            fresh = p.user("gbf")
            join(fresh, ch)
            fresh.send(f"PRIVMSG {ch} :after the garbage")
            peer.expect(cmd("PRIVMSG", ch, "after the garbage", src=fresh.nick))
            assert srv.p.poll() is None
            stopped_cleanly(srv, p)


with own_server():
    @case("SIGTERM: every client gets an ERROR line and the server exits 0")
    def _():
        with irc() as srv, Clients(srv.port) as p:
            ch = chan("term")
            a, b = p.user("terma"), p.user("termb")
            join(a, ch)
            srv.p.send_signal(signal.SIGTERM)
            for x in (a, b):
                msgs = x.expect_closed(timeout=10)
                assert any(m.command == "ERROR" for m in msgs), msgs
            rc, log = srv.stop(signal_it=False)
            assert rc == 0, (rc, log[-2000:])
            assert not SANITIZER.search(log), log[-4000:]


if not EXTERNAL:
    @case("the shared server stops on SIGTERM: exit 0, no sanitizer report")
    def _():
        stopped_cleanly(S)

report()
