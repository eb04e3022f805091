#!/usr/bin/env python3
"""`eddy dns` as real clients and attackers meet it: dig and kdig over UDP
and TCP against a zone holding every record type it serves; negative
answers, wildcards, a delegation, a CNAME chain; truncation without EDNS
and at a small EDNS size; case echo; EDNS and its BADVERS; NOTIMP and
REFUSED; $INCLUDE and multi-line records; zone errors at start and on
SIGHUP; a corpus of malformed packets over UDP and TCP; TCP pipelining and
the idle timeout; the query log; the caching forwarder against a second
`eddy dns` and against fake upstreams (failover, spoofed answers, TC=1,
shared questions in flight, random ports and IDs); every eddy dns stopped
by SIGTERM at the end of its case must exit 0 with no sanitizer report.

Needs dig and kdig (Debian bind9-dnsutils, knot-dnsutils; scripts/deps.sh).
The DNS messages themselves are built and read here (no DNS library), so
that malformed ones can be made byte by byte.

Usage: test_dns.py PATH_TO_EDDY. Ends with "passed=P failed=F".
"""
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import cert, Server, case, report  # noqa: E402

EDDY = sys.argv[1]
HERE = os.path.dirname(os.path.abspath(__file__))
ZONES = os.path.join(HERE, "dns")
EXAMPLE = os.path.join(ZONES, "example.zone")
REVERSE = os.path.join(ZONES, "reverse.zone")
UPSTREAM = os.path.join(ZONES, "upstream.zone")
BROKEN = os.path.join(ZONES, "broken.zone")

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16,
         "AAAA": 28, "SRV": 33, "OPT": 41, "ANY": 255, "CAA": 257}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP",
          5: "REFUSED", 16: "BADVERS"}


# ---- The wire format, enough to ask and to read answers ----

def wire_name(text):
    """Text to uncompressed wire form, case kept ("" or "." is the root)."""
    out = b""
    for label in text.rstrip(".").split(".") if text.strip(".") else []:
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def header(qid, flags=0x0100, qd=1, an=0, ns=0, ar=0):
    return struct.pack("!6H", qid, flags, qd, an, ns, ar)


def opt_rr(size=1232, version=0, do=False, owner=b"\0", rdata=b""):
    ttl = (version << 16) | (0x8000 if do else 0)
    return owner + struct.pack("!HHIH", 41, size, ttl, len(rdata)) + rdata


def make_query(name, qtype="A", qid=None, rd=True, edns=None, version=0, opcode=0,
               qclass=1):
    """A query message; edns is the UDP size to advertise (None: no OPT)."""
    qid = random.randrange(65536) if qid is None else qid
    t = TYPES[qtype] if isinstance(qtype, str) else qtype
    flags = (opcode << 11) | (0x0100 if rd else 0)
    msg = header(qid, flags, 1, 0, 0, 0 if edns is None else 1)
    msg += wire_name(name) + struct.pack("!HH", t, qclass)
    if edns is not None:
        msg += opt_rr(edns, version)
    return msg


class Malformed(Exception):
    pass


def read_name(data, off):
    """(text, raw bytes of the labels as sent, next offset); follows
    compression pointers, refusing loops and running off the end."""
    labels, end, jumps = [], None, 0
    while True:
        if off >= len(data):
            raise Malformed("name runs off the end")
        n = data[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(data):
                raise Malformed("pointer cut")
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | data[off + 1]
            jumps += 1
            if jumps > 64:
                raise Malformed("pointer loop")
            continue
        if n & 0xC0:
            raise Malformed("bad label type")
        off += 1
        if n == 0:
            break
        if off + n > len(data):
            raise Malformed("label runs off the end")
        labels.append(data[off:off + n])
        off += n
    text = ".".join(lb.decode("latin-1") for lb in labels) + "."
    return text, labels, end if end is not None else off


class RR:
    def __init__(self, name, rtype, rclass, ttl, rdata, labels=None):
        self.name, self.type, self.rclass, self.ttl = name, rtype, rclass, ttl
        self.rdata, self.labels = rdata, labels

    def __repr__(self):
        return f"{self.name} {self.ttl} {TYPE_NAMES.get(self.type, self.type)} {self.rdata!r}"


def decode_rdata(data, off, rtype, rdlen):
    end = off + rdlen
    rd = data[off:end]
    if rtype == 1 and rdlen == 4:
        return socket.inet_ntoa(rd)
    if rtype == 28 and rdlen == 16:
        return socket.inet_ntop(socket.AF_INET6, rd)
    if rtype in (2, 5, 12):
        return read_name(data, off)[0].lower()
    if rtype == 15:
        return (struct.unpack("!H", rd[:2])[0], read_name(data, off + 2)[0].lower())
    if rtype == 6:
        mname, _, o = read_name(data, off)
        rname, _, o = read_name(data, o)
        return (mname.lower(), rname.lower(), *struct.unpack("!5I", data[o:o + 20]))
    if rtype == 33:
        return (*struct.unpack("!3H", rd[:6]), read_name(data, off + 6)[0].lower())
    if rtype == 16:
        strings, i = [], 0
        while i < len(rd):
            strings.append(rd[i + 1:i + 1 + rd[i]].decode("latin-1"))
            i += 1 + rd[i]
        return tuple(strings)
    if rtype == 257:
        return (rd[0], rd[2:2 + rd[1]].decode(), rd[2 + rd[1]:].decode())
    return rd


class Msg:
    """A parsed DNS message (raises Malformed if it cannot be read)."""

    def __init__(self, data):
        if len(data) < 12:
            raise Malformed(f"{len(data)} bytes")
        self.raw = data
        self.id, flags, qd, an, ns, ar = struct.unpack("!6H", data[:12])
        self.flags = flags
        self.qr, self.opcode = bool(flags & 0x8000), (flags >> 11) & 15
        self.aa, self.tc = bool(flags & 0x0400), bool(flags & 0x0200)
        self.rd, self.ra = bool(flags & 0x0100), bool(flags & 0x0080)
        off = 12
        self.question = []
        for _ in range(qd):
            name, labels, off = read_name(data, off)
            if off + 4 > len(data):
                raise Malformed("question cut")
            t, c = struct.unpack("!HH", data[off:off + 4])
            off += 4
            self.question.append((name, labels, t, c))
        self.sections = []
        for count in (an, ns, ar):
            recs = []
            for _ in range(count):
                name, labels, off = read_name(data, off)
                if off + 10 > len(data):
                    raise Malformed("record header cut")
                t, c, ttl, rdlen = struct.unpack("!HHIH", data[off:off + 10])
                off += 10
                if off + rdlen > len(data):
                    raise Malformed("rdata past the end")
                recs.append(RR(name.lower(), t, c, ttl, decode_rdata(data, off, t, rdlen), labels))
                off += rdlen
            self.sections.append(recs)
        self.answer, self.authority, self.additional = self.sections
        opts = [r for r in self.additional if r.type == 41]
        self.opt = opts[0] if opts else None
        self.nopt = len(opts)
        self.rcode = flags & 15
        if self.opt is not None:
            self.rcode |= (self.opt.ttl >> 24) << 4

    def status(self):
        return RCODES.get(self.rcode, str(self.rcode))

    def rdatas(self, rtype, section=None):
        t = TYPES[rtype]
        return {r.rdata for r in (self.answer if section is None else section) if r.type == t}


def udp_ask(port, msg, timeout=3):
    """Sends msg over UDP; returns the Msg answering its ID."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
        s.send(msg)
        deadline = time.time() + timeout
        while True:
            s.settimeout(max(0.01, deadline - time.time()))
            data = s.recv(65535)
            if data[:2] == msg[:2]:
                return Msg(data)


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def read_frame(s):
    """One length-prefixed message from a TCP stream, or None at EOF."""
    hdr = recv_exact(s, 2)
    if hdr is None:
        return None
    body = recv_exact(s, struct.unpack("!H", hdr)[0])
    return body


def frame(msg):
    return struct.pack("!H", len(msg)) + msg


def tcp_ask(port, msg, timeout=5):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(frame(msg))
        data = read_frame(s)
        if data is None:
            raise AssertionError("the server closed the connection without answering")
        return Msg(data)


# ---- dig and kdig ----

class Dig:
    """What dig or kdig printed: status, id, flags, sections of records
    (name lower-cased, ttl, type, rdata text) and whether an OPT came."""

    def __init__(self, tool, out):
        self.tool, self.text = tool, out
        m = re.search(r"status: (\w+)[,;] id: (\d+)", out)
        if not m:
            raise AssertionError(f"{tool} got no answer:\n{out}")
        self.status, self.id = m.group(1), int(m.group(2))
        m = re.search(r";; [Ff]lags: ([a-z ]*);", out)
        self.flags = set(m.group(1).split()) if m else set()
        self.edns = "OPT PSEUDOSECTION" in out or "EDNS PSEUDOSECTION" in out
        self.sections = {"QUESTION": [], "ANSWER": [], "AUTHORITY": [], "ADDITIONAL": []}
        self.question_text = ""
        current = None
        for line in out.splitlines():
            m = re.match(r";; (\w+) (PSEUDO)?SECTION:", line)
            if m:
                current = m.group(1) if m.group(1) in self.sections else None
                continue
            if not line.strip():
                current = None
                continue
            if current == "QUESTION":
                self.question_text = line.lstrip("; ").split()[0]
                continue
            if current and not line.startswith(";"):
                parts = line.split(None, 4)
                if len(parts) == 5 and parts[2] == "IN":
                    self.sections[current].append(
                        (parts[0].lower(), int(parts[1]), parts[3], parts[4].strip()))

    def data(self, rtype, section="ANSWER"):
        return {r[3] for r in self.sections[section] if r[2] == rtype}

    def __repr__(self):
        return self.text


TOOLS = ("dig", "kdig")


def dig(tool, port, name, qtype="A", *opts, time_s=2):
    if tool == "dig":
        argv = ["dig", "@127.0.0.1", "-p", str(port), f"+time={time_s}", "+tries=1"]
    else:
        argv = ["kdig", "@127.0.0.1", "-p", str(port), f"+timeout={time_s}", "+retry=0"]
    argv += [name, qtype, *opts]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=time_s * 3 + 10)
    return Dig(tool, out.stdout + out.stderr)


# ---- Running eddy dns ----

def free_udp_tcp_port():
    """A port free for both UDP and TCP on loopback."""
    for _ in range(100):
        t = socket.socket()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise AssertionError("no free port")


class DnsServer(Server):
    """A Server whose exit, when the case went well, also checks that eddy
    stops on SIGTERM with status 0 and no sanitizer report in its log."""

    def __exit__(self, *exc):
        if exc[0] is None and self.p.poll() is None:
            rc, err = self.stop()
            super().__exit__(*exc)
            assert rc == 0, f"eddy dns exited {rc} on SIGTERM: {err[-3000:]}"
            bad = [x for x in err.splitlines() if "runtime error" in x or "Sanitizer" in x]
            assert not bad, "sanitizer report: " + err[-3000:]
            return
        super().__exit__(*exc)


def dns(*args):
    """eddy dns on one loopback port for UDP and TCP, ready to answer."""
    port = free_udp_tcp_port()
    srv = DnsServer(EDDY, "dns", "--listen", f"udp:{port}:interface=127.0.0.1", *args, port=port)
    if not srv.wait_log("dns: serving", 15):
        log = srv.stderr()
        srv.__exit__()
        raise AssertionError("no 'dns: serving' in the log: " + log)
    return srv


def authoritative(*extra):
    return dns("--zone", EXAMPLE, "--zone", REVERSE, *extra)


def check_answer(r, what, status="NOERROR", aa=True):
    assert r.status == status, (what, r.status, r)
    assert "qr" in r.flags, (what, r)
    assert ("aa" in r.flags) == aa, (what, "aa" if aa else "no aa", r)
    assert "tc" not in r.flags, (what, "tc", r)


# name, type, expected rdata texts as dig and kdig print them
RECORDS = [
    ("example.com", "SOA", {"ns1.example.com. hostmaster.example.com. 2026113001 7200 900 1209600 300"}),
    ("example.com", "NS", {"ns1.example.com.", "ns2.example.com."}),
    ("ns2.example.com", "A", {"192.0.2.2"}),
    ("ns2.example.com", "AAAA", {"2001:db8::2"}),
    ("www.example.com", "A", {"192.0.2.80"}),
    ("www.example.com", "AAAA", {"2001:db8::80"}),
    ("example.com", "MX", {"10 mail.example.com.", "20 mail.example.net."}),
    ("example.com", "TXT", {'"v=spf1 -all"'}),
    ("txt.example.com", "TXT", {'"first string" "second; not a comment" "third"'}),
    ("multi.example.com", "TXT", {'"one" "two"'}),
    ("_sip._tcp.example.com", "SRV", {"10 60 5060 sip.example.com."}),
    ("80.2.0.192.in-addr.arpa", "PTR", {"www.example.com."}),
    ("example.com", "CAA", {'0 issue "letsencrypt.org"'}),
    ("alias.example.com", "CNAME", {"alias2.example.com."}),
    ("extra.example.com", "A", {"192.0.2.110"}),
    ("host.extra.example.com", "A", {"192.0.2.111"}),
    ("after.example.com", "A", {"192.0.2.101"}),
]


@case("every record type by dig and kdig, over UDP and over TCP")
def _():
    with authoritative() as srv:
        for tool in TOOLS:
            for transport in ([], ["+tcp"]):
                for name, qtype, want in RECORDS:
                    what = (tool, *transport, name, qtype)
                    r = dig(tool, srv.port, name, qtype, *transport)
                    check_answer(r, what)
                    assert r.data(qtype) == want, (what, r.data(qtype), r)
                    owners = {x[0] for x in r.sections["ANSWER"]}
                    assert owners == {name + "."}, (what, owners)
                r = dig(tool, srv.port, "www.example.com", "A", *transport)
                assert [x[1] for x in r.sections["ANSWER"]] == [600], ("www's own TTL", r)
                r = dig(tool, srv.port, "manya.example.com", "A", *transport, "+bufsize=4096")
                check_answer(r, (tool, "manya"))
                assert len(r.data("A")) == 40, r


@case("the wire: every record type decoded from the raw answer")
def _():
    with authoritative() as srv:
        m = udp_ask(srv.port, make_query("example.com", "SOA"))
        assert m.rdatas("SOA") == {("ns1.example.com.", "hostmaster.example.com.",
                                    2026113001, 7200, 900, 1209600, 300)}, m.answer
        m = tcp_ask(srv.port, make_query("txt.example.com", "TXT"))
        assert m.rdatas("TXT") == {("first string", "second; not a comment", "third")}, m.answer
        m = udp_ask(srv.port, make_query("example.com", "CAA"))
        assert m.rdatas("CAA") == {(0, "issue", "letsencrypt.org")}, m.answer
        m = udp_ask(srv.port, make_query("_sip._tcp.example.com", "SRV", qid=0xBEEF))
        assert m.rdatas("SRV") == {(10, 60, 5060, "sip.example.com.")}, m.answer
        assert m.id == 0xBEEF and m.qr and m.aa and not m.tc and m.opcode == 0, hex(m.flags)
        assert m.question[0][0] == "_sip._tcp.example.com." and m.question[0][2:] == (33, 1), m.question


@case("additional section: the addresses of MX, NS and SRV targets held in the zone")
def _():
    with authoritative() as srv:
        m = udp_ask(srv.port, make_query("example.com", "MX", edns=1232))
        assert ("mail.example.com.", "192.0.2.25") in {(r.name, r.rdata) for r in m.additional}, m.additional
        m = udp_ask(srv.port, make_query("_sip._tcp.example.com", "SRV", edns=1232))
        assert ("sip.example.com.", "192.0.2.60") in {(r.name, r.rdata) for r in m.additional}, m.additional
        m = udp_ask(srv.port, make_query("example.com", "NS", edns=1232))
        got = {(r.name, r.rdata) for r in m.additional}
        assert {("ns1.example.com.", "192.0.2.1"), ("ns2.example.com.", "192.0.2.2"),
                ("ns2.example.com.", "2001:db8::2")} <= got, m.additional


@case("additional data that does not fit is left out whole, without TC (RFC 2181 section 9)")
def _():
    with authoritative() as srv:
        # bigmx's one MX fits in 512 bytes; the 40 addresses of its target
        # do not. The answer is complete: TC stays clear, and the rrset
        # that did not fit is omitted entirely rather than cut.
        for edns in (None, 1232):
            m = udp_ask(srv.port, make_query("bigmx.example.com", "MX", edns=edns))
            assert m.rcode == 0 and m.rdatas("MX") == {(10, "manya.example.com.")}, m.answer
            extra = [r for r in m.additional if r.type == 1]
            assert len(extra) in (0, 40), f"EDNS {edns}: {len(extra)} of the 40 addresses in additional"
            assert not m.tc, f"EDNS {edns}: TC set though the answer is complete"
        for tool in TOOLS:
            r = dig(tool, srv.port, "bigmx.example.com", "MX", "+noedns", "+ignore")
            check_answer(r, (tool, "bigmx"))


@case("NXDOMAIN and NODATA: the SOA in authority with the negative TTL (RFC 2308)")
def _():
    with authoritative() as srv:
        for tool in TOOLS:
            for transport in ([], ["+tcp"]):
                for name, qtype, status, soa_owner, neg in [
                        ("nothere.example.com", "A", "NXDOMAIN", "example.com.", 300),
                        ("deep.nothere.example.com", "AAAA", "NXDOMAIN", "example.com.", 300),
                        ("www.example.com", "MX", "NOERROR", "example.com.", 300),
                        ("example.com", "SRV", "NOERROR", "example.com.", 300),
                        ("1.2.0.192.in-addr.arpa", "PTR", "NXDOMAIN", "2.0.192.in-addr.arpa.", 60)]:
                    what = (tool, *transport, name, qtype)
                    r = dig(tool, srv.port, name, qtype, *transport)
                    check_answer(r, what, status)
                    assert r.sections["ANSWER"] == [], (what, r)
                    soa = [x for x in r.sections["AUTHORITY"] if x[2] == "SOA"]
                    assert len(soa) == 1 and soa[0][0] == soa_owner and soa[0][1] == neg, (what, soa, r)


@case("wildcards, and RFC 4592's empty non-terminal that blocks one")
def _():
    with authoritative() as srv:
        for tool in TOOLS:
            r = dig(tool, srv.port, "foo.wild.example.com", "A")
            check_answer(r, (tool, "foo.wild"))
            assert r.sections["ANSWER"] == [("foo.wild.example.com.", 3600, "A", "192.0.2.42")], r
            r = dig(tool, srv.port, "a.deeper.name.wild.example.com", "TXT")
            check_answer(r, (tool, "deep under wild"))
            assert r.sections["ANSWER"] == [("a.deeper.name.wild.example.com.", 3600, "TXT", '"wild"')], r
            r = dig(tool, srv.port, "foo.wild.example.com", "MX")  # wildcard NODATA
            check_answer(r, (tool, "foo.wild MX"))
            assert not r.sections["ANSWER"] and r.data("SOA", "AUTHORITY"), r
            r = dig(tool, srv.port, "y.c.example.com", "A")
            check_answer(r, (tool, "y.c"))
            assert r.sections["ANSWER"] == [("y.c.example.com.", 3600, "A", "192.0.2.99")], r
            # b.c exists (an empty non-terminal above a.b.c): *.c does not
            # answer below it, and b.c itself is NODATA, not the wildcard.
            r = dig(tool, srv.port, "x.b.c.example.com", "A")
            check_answer(r, (tool, "x.b.c"), "NXDOMAIN")
            assert not r.sections["ANSWER"] and r.data("SOA", "AUTHORITY"), r
            r = dig(tool, srv.port, "b.c.example.com", "A")
            check_answer(r, (tool, "b.c"))
            assert not r.sections["ANSWER"] and r.data("SOA", "AUTHORITY"), r
            r = dig(tool, srv.port, "wild.example.com", "A")  # an empty non-terminal too
            check_answer(r, (tool, "wild"))
            assert not r.sections["ANSWER"] and r.data("SOA", "AUTHORITY"), r
            r = dig(tool, srv.port, "a.b.c.example.com", "A")
            check_answer(r, (tool, "a.b.c"))
            assert r.data("A") == {"192.0.2.3"}, r


@case("a delegation is a referral: NS and glue, no AA, nothing from below the cut")
def _():
    with authoritative() as srv:
        for tool in TOOLS:
            for transport in ([], ["+tcp"]):
                for name in ("www.sub.example.com", "sub.example.com", "ns.sub.example.com"):
                    what = (tool, *transport, name)
                    r = dig(tool, srv.port, name, "A", "+norecurse", *transport)
                    check_answer(r, what, aa=False)
                    assert r.sections["ANSWER"] == [], (what, r)
                    ns = [x for x in r.sections["AUTHORITY"] if x[2] == "NS"]
                    assert {x[0] for x in ns} == {"sub.example.com."}, (what, r)
                    assert {x[3] for x in ns} == {"ns.sub.example.com.", "ns.outside.net."}, (what, r)
                    assert ("ns.sub.example.com.", 3600, "A", "192.0.2.53") in r.sections["ADDITIONAL"], (what, r)
                    assert not r.data("SOA", "AUTHORITY"), (what, r)


@case("a CNAME chain inside the zone is followed; NODATA at its end keeps the CNAMEs")
def _():
    with authoritative() as srv:
        for tool in TOOLS:
            r = dig(tool, srv.port, "alias.example.com", "A")
            check_answer(r, (tool, "alias A"))
            assert r.sections["ANSWER"] == [
                ("alias.example.com.", 3600, "CNAME", "alias2.example.com."),
                ("alias2.example.com.", 3600, "CNAME", "www.example.com."),
                ("www.example.com.", 600, "A", "192.0.2.80")], r
            r = dig(tool, srv.port, "alias.example.com", "AAAA", "+tcp")
            check_answer(r, (tool, "alias AAAA"))
            assert r.data("AAAA") == {"2001:db8::80"} and len(r.data("CNAME")) == 2, r
            r = dig(tool, srv.port, "alias.example.com", "MX")
            check_answer(r, (tool, "alias MX"))
            assert len(r.data("CNAME")) == 2 and not r.data("MX"), r
            assert r.data("SOA", "AUTHORITY"), r


@case("CNAMEs: a wildcard CNAME, a CNAME out of every zone, a loop answered without repeats")
def _():
    with authoritative() as srv:
        for tool in TOOLS:
            r = dig(tool, srv.port, "x.cw.example.com", "A")
            check_answer(r, (tool, "wildcard CNAME"))
            assert r.sections["ANSWER"] == [("x.cw.example.com.", 3600, "CNAME", "www.example.com."),
                                            ("www.example.com.", 600, "A", "192.0.2.80")], r
            r = dig(tool, srv.port, "out.example.com", "A")
            check_answer(r, (tool, "CNAME out"))
            assert r.sections["ANSWER"] == [("out.example.com.", 3600, "CNAME", "www.example.net.")], r
            # A CNAME to a name the zone does not hold: the rcode is that of
            # the last name, NXDOMAIN, with the CNAME (RFC 6604).
            r = dig(tool, srv.port, "dangling.example.com", "A")
            check_answer(r, (tool, "dangling CNAME"), "NXDOMAIN")
            assert r.sections["ANSWER"] == [("dangling.example.com.", 3600, "CNAME", "nothere.example.com.")], r
            assert r.data("SOA", "AUTHORITY"), r
        # A loop is answered (NOERROR with what was followed, or SERVFAIL),
        # each record once: RFC 2181 section 5, "servers should suppress
        # such duplicates".
        for ask in (udp_ask, tcp_ask):
            m = ask(srv.port, make_query("loop1.example.com"))
            assert m.rcode in (0, 2), m.status()
            seen = [(r.name, r.type, r.rdata) for r in m.answer]
            assert len(seen) == len(set(seen)), f"duplicate records in the answer: {seen}"


@case("truncation at 512 bytes without EDNS and at a small EDNS size; complete over TCP")
def _():
    with authoritative() as srv:
        for tool in TOOLS:
            r = dig(tool, srv.port, "manya.example.com", "A", "+noedns", "+ignore")
            assert r.status == "NOERROR" and "tc" in r.flags, ("manya without EDNS", r)
            r = dig(tool, srv.port, "manya.example.com", "A", "+bufsize=1232", "+ignore")
            check_answer(r, (tool, "manya at 1232"))
            assert len(r.data("A")) == 40, r
            r = dig(tool, srv.port, "bigtxt.example.com", "TXT", "+bufsize=1232", "+ignore")
            assert r.status == "NOERROR" and "tc" in r.flags, ("bigtxt at 1232", r)
            r = dig(tool, srv.port, "bigtxt.example.com", "TXT", "+tcp")
            check_answer(r, (tool, "bigtxt over TCP"))
            assert len(r.data("TXT")) == 20, r
            # Without +ignore the tool retries over TCP itself.
            r = dig(tool, srv.port, "manya.example.com", "A", "+noedns")
            check_answer(r, (tool, "manya retried over TCP"))
            assert len(r.data("A")) == 40, r
        # The sizes on the wire.
        q = make_query("manya.example.com")
        m = udp_ask(srv.port, q)
        assert m.tc and len(m.raw) <= 512 and m.opt is None, (len(m.raw), m.tc)
        for size, limit in ((600, 600), (100, 512), (512, 512), (1232, 1232)):
            m = udp_ask(srv.port, make_query("bigtxt.example.com", "TXT", edns=size))
            assert m.tc and len(m.raw) <= limit, (size, len(m.raw), m.tc)
            assert m.opt is not None, (size, "no OPT")
        m = udp_ask(srv.port, make_query("manya.example.com", edns=4096))
        assert not m.tc and len(m.answer) == 40, (m.tc, len(m.answer))
        m = tcp_ask(srv.port, q)
        assert not m.tc and len(m.answer) == 40 and len(m.raw) > 512, (m.tc, len(m.answer))
        m = tcp_ask(srv.port, make_query("bigtxt.example.com", "TXT"))
        assert not m.tc and len(m.rdatas("TXT")) == 20 and len(m.raw) > 4000, (m.tc, len(m.answer))


@case("the question's case is echoed (dig WwW.ExAmPlE.CoM)")
def _():
    with authoritative() as srv:
        for tool in TOOLS:
            for transport in ([], ["+tcp"]):
                r = dig(tool, srv.port, "WwW.ExAmPlE.CoM", "A", *transport)
                check_answer(r, (tool, "mixed case"))
                # kdig lower-cases the name before sending it; dig keeps it.
                if tool == "dig":
                    assert r.question_text == "WwW.ExAmPlE.CoM.", (r.question_text, r)
                assert r.data("A") == {"192.0.2.80"}, r
        q = make_query("WwW.ExAmPlE.CoM")
        for m in (udp_ask(srv.port, q), tcp_ask(srv.port, q)):
            assert m.question[0][1] == [b"WwW", b"ExAmPlE", b"CoM"], m.question
            assert m.rdatas("A") == {"192.0.2.80"} and m.aa
        m = udp_ask(srv.port, make_query("NoThErE.eXaMpLe.CoM"))
        assert m.rcode == 3 and m.question[0][1] == [b"NoThErE", b"eXaMpLe", b"CoM"], m.question


@case("EDNS: an OPT in the answer only when the query had one; BADVERS for version 1")
def _():
    with authoritative() as srv:
        for tool in TOOLS:
            r = dig(tool, srv.port, "www.example.com", "A", "+noedns")
            check_answer(r, (tool, "noedns"))
            assert not r.edns, ("an OPT came though none was sent", r)
            r = dig(tool, srv.port, "www.example.com", "A", "+edns=0")
            check_answer(r, (tool, "edns"))
            assert r.edns, ("no OPT in the answer to an EDNS query", r)
        r = dig("dig", srv.port, "www.example.com", "A", "+edns=1", "+noednsnegotiation")
        assert r.status == "BADVERS" and r.edns and not r.sections["ANSWER"], r
        r = dig("kdig", srv.port, "www.example.com", "A", "+edns=1")
        assert r.status == "BADVERS" and r.edns, r
        for ask in (udp_ask, tcp_ask):
            m = ask(srv.port, make_query("www.example.com"))
            assert m.opt is None and m.rdatas("A") == {"192.0.2.80"}, m.additional
            m = ask(srv.port, make_query("www.example.com", edns=1232))
            assert m.nopt == 1 and (m.opt.ttl >> 16) & 0xFF == 0 and m.opt.name == ".", m.additional
            assert m.opt.rclass >= 512, m.opt
            m = ask(srv.port, make_query("www.example.com", edns=1232, version=1))
            assert m.qr and m.rcode == 16 and m.nopt == 1 and not m.answer, (m.rcode, m.answer)
            assert (m.opt.ttl >> 16) & 0xFF == 0, ("BADVERS carries the version we speak", m.opt)


@case("ANY is answered minimally: one rrset (RFC 8482)")
def _():
    with authoritative() as srv:
        for ask in (udp_ask, tcp_ask):
            m = ask(srv.port, make_query("example.com", "ANY", edns=1232))
            assert m.rcode == 0 and m.aa and m.answer, (m.status(), m.answer)
            assert len({(r.name, r.type) for r in m.answer}) == 1, m.answer
        for tool in TOOLS:
            r = dig(tool, srv.port, "www.example.com", "ANY")
            check_answer(r, (tool, "ANY"))
            assert len({x[2] for x in r.sections["ANSWER"]}) == 1, r


@case("header bits: ID, RD and CD copied, RA clear without --forward; other classes not answered")
def _():
    with authoritative() as srv:
        for ask in (udp_ask, tcp_ask):
            for rd in (False, True):
                m = ask(srv.port, make_query("www.example.com", rd=rd, qid=321))
                assert m.id == 321 and m.rd == rd and not m.ra and m.aa and m.opcode == 0, (rd, hex(m.flags))
            q = bytearray(make_query("www.example.com", qid=322))
            q[3] |= 0x10  # CD
            q[2] |= 0x02  # TC in a query means nothing
            m = ask(srv.port, bytes(q))
            assert m.flags & 0x0010 and not m.tc and m.rdatas("A") == {"192.0.2.80"}, hex(m.flags)
            for qclass in (3, 4, 255):  # CH, HS, ANY: the zones are IN
                m = ask(srv.port, make_query("www.example.com", qclass=qclass))
                assert m.rcode in (4, 5) and not m.answer and not m.aa, (qclass, m.status(), m.answer)


@case("NOTIMP for opcodes other than QUERY, over UDP and TCP")
def _():
    with authoritative() as srv:
        for opcode in (1, 2, 5, 15):
            q = make_query("www.example.com", opcode=opcode, qid=0x4000 + opcode)
            for m in (udp_ask(srv.port, q), tcp_ask(srv.port, q)):
                assert m.qr and m.rcode == 4 and m.id == 0x4000 + opcode, (opcode, m.rcode)
                assert m.opcode == opcode and not m.answer, (opcode, m.opcode, m.answer)


@case("REFUSED for a name outside every zone when there is no forwarder")
def _():
    with authoritative() as srv:
        for tool in TOOLS:
            for transport in ([], ["+tcp"]):
                r = dig(tool, srv.port, "www.example.org", "A", *transport)
                assert r.status == "REFUSED" and "aa" not in r.flags and not r.sections["ANSWER"], r
                r = dig(tool, srv.port, "com", "NS", *transport)  # above a zone
                assert r.status == "REFUSED", r


@case("$INCLUDE (with and without an origin) and multi-line records")
def _():
    with authoritative() as srv:
        m = udp_ask(srv.port, make_query("example.com", "SOA"))
        soa = list(m.rdatas("SOA"))
        assert len(soa) == 1 and soa[0][2:] == (2026113001, 7200, 900, 1209600, 300), soa
        assert udp_ask(srv.port, make_query("multi.example.com", "TXT")).rdatas("TXT") == {("one", "two")}
        assert len(udp_ask(srv.port, make_query("manya.example.com", edns=4096)).answer) == 40
        assert udp_ask(srv.port, make_query("extra.example.com")).rdatas("A") == {"192.0.2.110"}
        assert udp_ask(srv.port, make_query("host.extra.example.com")).rdatas("A") == {"192.0.2.111"}
        # The origin reverts after the $INCLUDE that named one.
        assert udp_ask(srv.port, make_query("after.example.com")).rdatas("A") == {"192.0.2.101"}
        assert udp_ask(srv.port, make_query("after.extra.example.com")).rcode == 3


def start_fails(*args):
    """Runs eddy dns expecting it to refuse to start: (status, stderr)."""
    port = free_udp_tcp_port()
    p = subprocess.run([EDDY, "dns", "--listen", f"udp:{port}:interface=127.0.0.1", *args],
                       capture_output=True, text=True, timeout=30)
    return p.returncode, p.stderr


@case("a broken zone at start: exit 1, FILE:LINE and the problem on stderr")
def _():
    rc, err = start_fails("--zone", BROKEN)
    assert rc == 1 and "broken.zone:5" in err, (rc, err)
    d = tempfile.mkdtemp(prefix="eddy-dns-")
    try:
        with open(os.path.join(d, "main.zone"), "w") as f:
            f.write("$TTL 60\n$ORIGIN inc.test.\n@ IN SOA ns admin 1 2 3 4 5\n@ IN NS ns\n"
                    "$INCLUDE part.inc\n")
        with open(os.path.join(d, "part.inc"), "w") as f:
            f.write("; fine\nok IN A 192.0.2.1\nbad IN MX nonumber mail\n")
        rc, err = start_fails("--zone", EXAMPLE, "--zone", os.path.join(d, "main.zone"))
        assert rc == 1 and "part.inc:3" in err, ("an error in an included file", rc, err)
        rc, err = start_fails("--zone", os.path.join(d, "missing.zone"))
        assert rc == 1 and "missing.zone" in err, ("a missing file", rc, err)
        with open(os.path.join(d, "nosoa.zone"), "w") as f:
            f.write("$ORIGIN nosoa.test.\n@ 60 IN NS ns\n")
        rc, err = start_fails("--zone", os.path.join(d, "nosoa.zone"))
        assert rc == 1 and "nosoa.zone" in err, ("a zone without SOA", rc, err)
    finally:
        shutil.rmtree(d)


RELOAD_ZONE = """$TTL 60
$ORIGIN reload.test.
@ IN SOA ns admin {serial} 3600 600 86400 30
@ IN NS ns
ns IN A 192.0.2.1
v IN A {addr}
{extra}
"""


def reloads(srv):
    """How many reloads the log reports ("dns: ...reloaded ...")."""
    return sum(1 for x in srv.stderr().splitlines() if "dns:" in x and " reloaded" in x)


def wait_reloads(srv, n, timeout=10):
    deadline = time.time() + timeout
    while reloads(srv) < n:
        if time.time() >= deadline:
            return False
        time.sleep(0.02)
    return True


@case("SIGHUP: a good new zone is served; a broken one is refused, the old one kept")
def _():
    d = tempfile.mkdtemp(prefix="eddy-dns-")
    path = os.path.join(d, "reload.zone")

    def write(text):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, path)

    try:
        write(RELOAD_ZONE.format(serial=1, addr="192.0.2.10", extra=""))
        with dns("--zone", path, "--zone", REVERSE) as srv:
            assert udp_ask(srv.port, make_query("v.reload.test")).rdatas("A") == {"192.0.2.10"}
            assert udp_ask(srv.port, make_query("new.reload.test")).rcode == 3
            write(RELOAD_ZONE.format(serial=2, addr="192.0.2.20", extra="new IN A 192.0.2.30"))
            srv.p.send_signal(signal.SIGHUP)
            assert wait_reloads(srv, 1), srv.stderr()
            for tool in TOOLS:
                r = dig(tool, srv.port, "v.reload.test", "A")
                assert r.data("A") == {"192.0.2.20"}, r
                r = dig(tool, srv.port, "new.reload.test", "A", "+tcp")
                assert r.data("A") == {"192.0.2.30"}, r
                r = dig(tool, srv.port, "reload.test", "SOA")
                assert " 2 3600 " in next(iter(r.data("SOA"))), r
            # Broken on line 6.
            write(RELOAD_ZONE.format(serial=3, addr="192.0.2.300", extra=""))
            srv.p.send_signal(signal.SIGHUP)
            assert srv.wait_log("reload failed", 10), srv.stderr()
            line = [x for x in srv.stderr().splitlines() if "reload failed" in x][-1]
            assert "reload.zone:6" in line, line
            assert srv.p.poll() is None, "the server exited on a failed reload"
            for ask in (udp_ask, tcp_ask):
                assert ask(srv.port, make_query("v.reload.test")).rdatas("A") == {"192.0.2.20"}
                assert ask(srv.port, make_query("new.reload.test")).rdatas("A") == {"192.0.2.30"}
                assert ask(srv.port, make_query("80.2.0.192.in-addr.arpa", "PTR")).rdatas("PTR")
            # Fixed again: served again.
            write(RELOAD_ZONE.format(serial=4, addr="192.0.2.40", extra=""))
            srv.p.send_signal(signal.SIGHUP)
            assert wait_reloads(srv, 2), srv.stderr()
            assert udp_ask(srv.port, make_query("v.reload.test")).rdatas("A") == {"192.0.2.40"}
            assert udp_ask(srv.port, make_query("new.reload.test")).rcode == 3
            rc, err = srv.stop()
            assert rc == 0, (rc, err)
    finally:
        shutil.rmtree(d)


@case("SIGTERM and SIGINT: exit 0")
def _():
    for sig in (signal.SIGTERM, signal.SIGINT):
        with authoritative() as srv:
            assert udp_ask(srv.port, make_query("www.example.com")).rdatas("A")
            srv.p.send_signal(sig)
            rc, err = srv.stop(signal_it=False)
            assert rc == 0, (sig, rc, err)


# ---- Hostile input ----

QID = 0x1234


def q_body(name="www.example.com", t=1):
    return wire_name(name) + struct.pack("!HH", t, 1)


# (what, bytes, expectation): "drop" (no answer), "formerr", "notimp",
# "answer" (a normal answer), or "any" (an answer with this ID, any rcode).
CORPUS = [
    ("an empty message", b"", "drop"),
    ("one byte", b"\x12", "drop"),
    ("eleven bytes of header", header(QID)[:11], "drop"),
    ("QR=1: a response sent to the server", header(QID, 0x8100) + q_body(), "drop"),
    ("QR=1 with nonsense after it", header(QID, 0x8500, 7, 9, 9, 9) + b"\xff" * 40, "drop"),
    ("a header announcing a question that is not there", header(QID), "formerr"),
    ("QDCOUNT 0", header(QID, 0x0100, 0), "formerr"),
    ("QDCOUNT 2", header(QID, 0x0100, 2) + q_body() + q_body("ns1.example.com"), "formerr"),
    ("QDCOUNT 65535", header(QID, 0x0100, 65535) + q_body(), "formerr"),
    ("a question cut in its type", header(QID) + wire_name("www.example.com") + b"\x00", "formerr"),
    ("a question cut in its name", header(QID) + b"\x03www\x07exam", "formerr"),
    ("a name without its root label", header(QID) + b"\x03www\x07example\x03com", "formerr"),
    ("a compression pointer past the end", header(QID) + b"\xc0\xff" + b"\x00\x01\x00\x01", "formerr"),
    ("a compression pointer to itself", header(QID) + b"\xc0\x0c" + b"\x00\x01\x00\x01", "formerr"),
    ("a compression loop through a label",
     header(QID) + b"\x01a\xc0\x0c" + b"\x00\x01\x00\x01", "formerr"),
    ("a pointer cut after its first byte", header(QID) + b"\x03www\xc0", "formerr"),
    ("a label of 64 bytes (length byte 0x40)",
     header(QID) + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01", "formerr"),
    ("label type 0x80 (reserved)", header(QID) + b"\x80abc\x00\x00\x01\x00\x01", "formerr"),
    ("a name of 257 bytes", header(QID) + (b"\x3f" + b"a" * 63) * 4 + b"\x00\x00\x01\x00\x01", "formerr"),
    ("a name of 256 bytes through a pointer",
     header(QID, 0x0100, 1, 0, 0, 1) + (b"\x3f" + b"a" * 63) * 3 + b"\x3d" + b"a" * 61 + b"\x00"
     + b"\x00\x01\x00\x01" + b"\x01b\xc0\x0c" + struct.pack("!HHIH", 1, 1, 0, 4) + b"\0\0\0\0", "formerr"),
    ("ANCOUNT 1 and no record", header(QID, 0x0100, 1, 1) + q_body(), "formerr"),
    ("ARCOUNT 1, an A whose rdlength runs past the end",
     header(QID, 0x0100, 1, 0, 0, 1) + q_body() + b"\x00" + struct.pack("!HHIH", 1, 1, 0, 200) + b"\1\2\3\4",
     "formerr"),
    ("an OPT whose rdlength runs past the end",
     header(QID, 0x0100, 1, 0, 0, 1) + q_body() + b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 30), "formerr"),
    ("a record header cut short",
     header(QID, 0x0100, 1, 0, 0, 1) + q_body() + b"\x00\x00\x29\x04", "formerr"),
    ("two OPT records",
     header(QID, 0x0100, 1, 0, 0, 2) + q_body() + opt_rr() + opt_rr(), "formerr"),
    ("an OPT whose owner is not the root",
     header(QID, 0x0100, 1, 0, 0, 1) + q_body() + opt_rr(owner=wire_name("example.com")), "formerr"),
    ("an OPT in the answer section",
     header(QID, 0x0100, 1, 1, 0, 0) + q_body() + opt_rr(), "formerr"),
    ("an OPT option longer than the OPT's rdata",
     header(QID, 0x0100, 1, 0, 0, 1) + q_body() + opt_rr(rdata=struct.pack("!HH", 10, 8) + b"abcd"),
     "formerr"),
    ("opcode 15 with garbage after the header", header(QID, 0x7800, 3) + b"\xff" * 5, "notimp"),
    ("a name of exactly 255 bytes (legal)",
     header(QID) + (b"\x3f" + b"a" * 63) * 3 + b"\x3d" + b"a" * 61 + b"\x00\x00\x01\x00\x01", "any"),
    ("bytes after the question", header(QID) + q_body() + b"garbage", "any"),
    ("a well-formed query (control)", header(QID) + q_body(), "answer"),
]


def check_verdict(what, expect, replies):
    """replies: the messages other than the probe's answer."""
    if expect == "drop":
        assert not replies, (what, "answered though it should be dropped", replies)
        return
    assert len(replies) == 1, (what, f"{len(replies)} answers, expected 1 ({expect})")
    m = Msg(replies[0])
    assert m.qr and m.id == QID, (what, m.qr, m.id)
    want = {"formerr": {1}, "notimp": {4}, "answer": {0}, "any": set(range(24))}[expect]
    assert m.rcode in want, (what, expect, m.status())
    if expect == "formerr":
        assert not m.answer and not m.authority, (what, "records in a FORMERR", m.answer)
    if expect == "answer":
        assert m.rdatas("A") == {"192.0.2.80"}, (what, m.answer)


def udp_corpus_round(port, probe_id):
    """Sends every corpus message over one UDP socket, each followed by a
    good query; checks what came back before the good query's answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("127.0.0.1", port))
        s.settimeout(5)
        for what, pkt, expect in CORPUS:
            probe = make_query("ns1.example.com", qid=probe_id)
            s.send(pkt)
            s.send(probe)
            replies = []
            while True:
                try:
                    data = s.recv(65535)
                except socket.timeout:
                    raise AssertionError(f"no answer to a good query after: {what}")
                if data[:2] == probe[:2] and Msg(data).rdatas("A") == {"192.0.2.1"}:
                    break
                replies.append(data)
            check_verdict(what, expect, replies)


def tcp_corpus_round(port, probe_id):
    """Each corpus message on a connection of its own, followed by a good
    query: the FORMERR cases must be answered; a dropped one may close the
    connection, after which a new connection must be answered."""
    for what, pkt, expect in CORPUS:
        probe = make_query("ns1.example.com", qid=probe_id)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(frame(pkt) + frame(probe))
            replies, answered = [], False
            while True:
                try:
                    data = read_frame(s)
                except ConnectionResetError:
                    data = None
                if data is None:
                    break
                if data[:2] == probe[:2] and Msg(data).rdatas("A") == {"192.0.2.1"}:
                    answered = True
                    break
                replies.append(data)
        if not answered:
            # Over TCP a message that cannot be used may also end the
            # connection, unanswered (RFC 7766 lets a server
            # close a connection; NSD does): nothing else may have come.
            assert expect in ("drop", "formerr"), (what, "TCP connection closed without the answers")
            assert not replies or expect == "formerr", (what, replies)
            if not replies:
                expect = "drop"
            m = tcp_ask(port, probe)
            assert m.rdatas("A") == {"192.0.2.1"}, (what, "no answer on a new connection")
        check_verdict(what + " (TCP)", expect, replies)


@case("a corpus of malformed packets over UDP: each answered FORMERR or dropped")
def _():
    with authoritative() as srv:
        udp_corpus_round(srv.port, 0x7777)
        assert srv.p.poll() is None


@case("the same corpus over TCP, and broken framing")
def _():
    with authoritative() as srv:
        tcp_corpus_round(srv.port, 0x7777)
        # Framing cut short, then the connection closed: no harm.
        for junk in (b"\x00", b"\x00\x40" + b"\x12\x34\x01", b"\xff\xff" + header(QID) + q_body(), b"\x00\x00"):
            with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
                s.sendall(junk)
        # A message split across writes is read whole. Between the pieces
        # a UDP query answered gives the server's loop its turn to read the
        # piece that came (a round trip, not a sleep).
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            whole = frame(make_query("www.example.com", qid=99))
            for i in range(0, len(whole), 5):
                s.sendall(whole[i:i + 5])
                assert udp_ask(srv.port, make_query("ns1.example.com")).rdatas("A") == {"192.0.2.1"}
            m = Msg(read_frame(s))
            assert m.id == 99 and m.rdatas("A") == {"192.0.2.80"}, m.answer
        assert tcp_ask(srv.port, make_query("www.example.com")).rdatas("A") == {"192.0.2.80"}
        assert srv.p.poll() is None


@case("hostile input does not make the server grow: 100 rounds of the corpus and random mutations")
def _():
    with authoritative() as srv:
        udp_corpus_round(srv.port, 0x7001)
        tcp_corpus_round(srv.port, 0x7001)
        before = srv.rss_kb()
        rnd = random.Random(14)
        good = make_query("www.example.com", edns=1232)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("127.0.0.1", srv.port))
            s.settimeout(5)
            for rounds in range(100):
                for _, pkt, _ in CORPUS:
                    s.send(pkt)
                for _ in range(50):
                    m = bytearray(good)
                    for _ in range(rnd.randint(1, 6)):
                        m[rnd.randrange(len(m))] = rnd.randrange(256)
                    cut = rnd.randint(0, len(m))
                    s.send(bytes(m[:cut] if rnd.random() < 0.3 else m))
                probe = make_query("ns1.example.com", qid=0x6000 + rounds)
                s.send(probe)
                while True:
                    try:
                        data = s.recv(65535)
                    except socket.timeout:
                        raise AssertionError(f"no answer to a good query in round {rounds}")
                    if data[:2] == probe[:2]:
                        break
        for _ in range(3):
            tcp_corpus_round(srv.port, 0x7002)
        grown = srv.rss_kb() - before
        assert srv.p.poll() is None, srv.stderr()
        assert udp_ask(srv.port, make_query("www.example.com")).rdatas("A") == {"192.0.2.80"}
        assert grown < 4096, f"RSS grew by {grown} kB under hostile input"
        rc, err = srv.stop()
        assert rc == 0 and "runtime error" not in err and "Sanitizer" not in err, (rc, err[-3000:])


# ---- TCP ----

@case("several pipelined queries on one TCP connection, each answered with its ID")
def _():
    with authoritative() as srv:
        asks = [("www.example.com", "A", "192.0.2.80"), ("ns1.example.com", "A", "192.0.2.1"),
                ("ns2.example.com", "AAAA", "2001:db8::2"), ("mail.example.com", "A", "192.0.2.25"),
                ("sip.example.com", "A", "192.0.2.60"), ("www.example.com", "AAAA", "2001:db8::80")] * 4
        queries = {1000 + i: a for i, a in enumerate(asks)}
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
            s.sendall(b"".join(frame(make_query(n, t, qid=i)) for i, (n, t, _) in queries.items()))
            seen = set()
            for _ in queries:
                data = read_frame(s)
                assert data is not None, f"closed after {len(seen)} of {len(queries)} answers"
                m = Msg(data)
                assert m.id in queries and m.id not in seen, m.id
                name, t, want = queries[m.id]
                assert m.question[0][0] == name + "." and m.rdatas(t) == {want}, (m.id, m.question, m.answer)
                seen.add(m.id)
            # The connection stays usable afterwards.
            s.sendall(frame(make_query("www.example.com", qid=7)))
            m = Msg(read_frame(s))
            assert m.id == 7 and m.rdatas("A") == {"192.0.2.80"}


@case("an idle TCP connection is closed by the server (--tcp-idle-timeout)")
def _():
    with authoritative("--tcp-idle-timeout", "1") as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
            s.sendall(frame(make_query("www.example.com", qid=5)))
            assert Msg(read_frame(s)).id == 5
            start = time.time()
            s.settimeout(15)
            try:
                got = s.recv(100)
            except ConnectionResetError:
                got = b""
            except socket.timeout:
                raise AssertionError("an idle connection still open after 15 s")
            waited = time.time() - start
            assert got == b"", got
            assert 0.5 <= waited <= 10, waited
        # A connection that never sent anything is closed too.
        with socket.create_connection(("127.0.0.1", srv.port), timeout=15) as s:
            try:
                assert s.recv(100) == b""
            except ConnectionResetError:
                pass
        assert udp_ask(srv.port, make_query("www.example.com")).rdatas("A")


@case("--query-log: one line per query, 'udp|tcp NAME TYPE'")
def _():
    d = tempfile.mkdtemp(prefix="eddy-dns-")
    log = os.path.join(d, "queries.log")
    try:
        with authoritative("--query-log", log) as srv:
            udp_ask(srv.port, make_query("www.example.com"))
            tcp_ask(srv.port, make_query("www.example.com", "AAAA"))
            udp_ask(srv.port, make_query("nothere.example.com", "MX"))
            udp_ask(srv.port, make_query("www.example.com", 65000))
            with open(log) as f:
                lines = f.read().splitlines()
            assert lines == ["udp www.example.com. A", "tcp www.example.com. AAAA",
                             "udp nothere.example.com. MX", "udp www.example.com. TYPE65000"], lines
    finally:
        shutil.rmtree(d)


# ---- The forwarder ----

class FakeUpstream:
    """A UDP (and TCP) upstream in Python. For each query it sends, in
    order: the right answer from another port; an answer with the wrong
    ID; an answer with the right ID but another question; then the right
    answer (or, with tc, a TC=1 answer and the right one over TCP)."""

    def __init__(self, tc=False, gate=None, rcode=0):
        self.tc, self.gate = tc, gate  # gate: a threading.Event to wait for
        self.rcode = rcode  # other than 0: only that rcode, no records
        self.seen = []  # (source port, ID) of each UDP query
        for _ in range(100):  # a port free for both UDP and TCP
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.udp.bind(("127.0.0.1", 0))
            self.port = self.udp.getsockname()[1]
            self.tcp = socket.socket()
            try:
                self.tcp.bind(("127.0.0.1", self.port))
                break
            except OSError:
                self.udp.close()
                self.tcp.close()
        self.tcp.listen(8)
        self.other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.other.bind(("127.0.0.1", 0))
        self.udp.settimeout(0.1)
        self.tcp.settimeout(0.1)
        self.queries, self.tcp_queries = 0, 0
        self.stop = False
        self.threads = [threading.Thread(target=self.serve_udp), threading.Thread(target=self.serve_tcp)]
        for t in self.threads:
            t.start()

    @staticmethod
    def answer(q, qid, name=None, addr="192.0.2.77", tc=False):
        qname = wire_name(name) if name else q.raw[12:12 + len(wire_name(q.question[0][0]))]
        flags = 0x8000 | 0x0400 | 0x0080 | (q.flags & 0x0100) | (0x0200 if tc else 0)
        msg = header(qid, flags, 1, 0 if tc else 1) + qname + struct.pack("!HH", q.question[0][2], 1)
        if not tc:
            msg += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(addr)
        return msg

    def serve_udp(self):
        while not self.stop:
            try:
                data, peer = self.udp.recvfrom(65535)
            except socket.timeout:
                continue
            q = Msg(data)
            self.queries += 1
            self.seen.append((peer[1], q.id))
            if self.rcode:
                msg = self.answer(q, q.id, tc=True)
                self.udp.sendto(msg[:2] + bytes([msg[2] & ~0x02, 0x80 | self.rcode]) + msg[4:], peer)
                continue
            if self.gate is not None and not self.gate.wait(20):
                continue
            self.other.sendto(self.answer(q, q.id, addr="10.6.6.8"), peer)
            self.udp.sendto(self.answer(q, q.id ^ 0x5555, addr="10.6.6.6"), peer)
            self.udp.sendto(self.answer(q, q.id, name="evil.test", addr="10.6.6.7"), peer)
            self.udp.sendto(self.answer(q, q.id, tc=self.tc), peer)

    def serve_tcp(self):
        while not self.stop:
            try:
                c, _ = self.tcp.accept()
            except socket.timeout:
                continue
            with c:
                c.settimeout(5)
                try:
                    data = read_frame(c)
                    if data:
                        q = Msg(data)
                        self.tcp_queries += 1
                        c.sendall(frame(self.answer(q, q.id, addr="192.0.2.78")))
                        read_frame(c)
                except OSError:
                    pass

    def close(self):
        self.stop = True
        if self.gate is not None:
            self.gate.set()
        for t in self.threads:
            t.join()
        for s in (self.udp, self.tcp, self.other):
            s.close()


def wait_for(cond, timeout=10, what="a condition"):
    deadline = time.time() + timeout
    while not cond():
        if time.time() >= deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def count_log(path, name, qtype):
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return 0
    n = 0
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[1].lower() == name and parts[2] == qtype:
            n += 1
    return n


@case("the forwarder against a second eddy dns: answers, cache hits, NXDOMAIN cached")
def _():
    d = tempfile.mkdtemp(prefix="eddy-dns-")
    log = os.path.join(d, "upstream.log")
    try:
        with dns("--zone", UPSTREAM, "--query-log", log) as up, \
                dns("--zone", REVERSE, "--forward", f"127.0.0.1:{up.port}") as fw:
            for tool in TOOLS:
                r = dig(tool, fw.port, "host.fwd.test", "A")
                assert r.status == "NOERROR" and r.data("A") == {"198.51.100.7"}, r
                assert "ra" in r.flags and "aa" not in r.flags, r
                assert 0 < r.sections["ANSWER"][0][1] <= 300, r
                assert count_log(log, "host.fwd.test.", "A") == 1, open(log).read()
            r = dig("dig", fw.port, "host.fwd.test", "A", "+tcp")
            assert r.data("A") == {"198.51.100.7"} and "ra" in r.flags, r
            assert count_log(log, "host.fwd.test.", "A") == 1, open(log).read()
            r = dig("kdig", fw.port, "host.fwd.test", "AAAA")
            assert r.data("AAAA") == {"2001:db8::7"}, r
            assert count_log(log, "host.fwd.test.", "AAAA") == 1, open(log).read()
            # NXDOMAIN, with the SOA, cached too.
            for tool in TOOLS * 2:
                r = dig(tool, fw.port, "nope.fwd.test", "A")
                assert r.status == "NXDOMAIN" and "ra" in r.flags and "aa" not in r.flags, r
                soa = [x for x in r.sections["AUTHORITY"] if x[2] == "SOA"]
                assert soa and soa[0][1] <= 120, r
            assert count_log(log, "nope.fwd.test.", "A") == 1, open(log).read()
            # The client's ID and case, an OPT only if it sent one.
            q = make_query("HoSt.FwD.TeSt", qid=0xABCD)
            m = udp_ask(fw.port, q)
            assert m.id == 0xABCD and m.question[0][1] == [b"HoSt", b"FwD", b"TeSt"], m.question
            assert m.opt is None and m.rdatas("A") == {"198.51.100.7"}, m.additional
            # Names compare without regard to case (RFC 4343): a cache hit.
            assert count_log(log, "host.fwd.test.", "A") == 1, open(log).read()
            # NODATA cached too.
            for _ in range(2):
                m = udp_ask(fw.port, make_query("host.fwd.test", "MX"))
                assert m.rcode == 0 and not m.answer and m.rdatas("SOA", m.authority), m.authority
            assert count_log(log, "host.fwd.test.", "MX") == 1, open(log).read()
            # An OPT for a client that sent one.
            m = udp_ask(fw.port, make_query("host.fwd.test", edns=1232))
            assert m.nopt == 1 and m.rdatas("A") == {"198.51.100.7"}, m.additional
            # The TTL handed out goes down with time spent in the cache.
            first = udp_ask(fw.port, make_query("host.fwd.test")).answer[0].ttl
            wait_for(lambda: udp_ask(fw.port, make_query("host.fwd.test")).answer[0].ttl < first,
                     timeout=5, what="the cached TTL to go down")
            assert count_log(log, "host.fwd.test.", "A") == 1, open(log).read()
            # Its own zone still answered with authority.
            r = dig("dig", fw.port, "80.2.0.192.in-addr.arpa", "PTR")
            assert r.data("PTR") == {"www.example.com."} and "aa" in r.flags, r
            assert fw.p.poll() is None and up.p.poll() is None
    finally:
        shutil.rmtree(d)


@case("the forwarder caches by TTL: TTL 0 never (RFC 1035 3.2.1), a short one expires; CNAMEs kept")
def _():
    d = tempfile.mkdtemp(prefix="eddy-dns-")
    log = os.path.join(d, "upstream.log")
    try:
        with dns("--zone", UPSTREAM, "--query-log", log) as up, \
                dns("--forward", f"127.0.0.1:{up.port}") as fw:
            for i in range(3):
                m = udp_ask(fw.port, make_query("zero.fwd.test"))
                assert m.rdatas("A") == {"198.51.100.9"} and m.answer[0].ttl == 0, m.answer
                assert count_log(log, "zero.fwd.test.", "A") == i + 1, ("a TTL 0 answer was cached", open(log).read())
            m = udp_ask(fw.port, make_query("short.fwd.test"))
            assert m.rdatas("A") == {"198.51.100.10"} and m.answer[0].ttl <= 1, m.answer
            assert count_log(log, "short.fwd.test.", "A") == 1
            wait_for(lambda: udp_ask(fw.port, make_query("short.fwd.test")).rdatas("A") == {"198.51.100.10"}
                     and count_log(log, "short.fwd.test.", "A") == 2, timeout=5, what="the 1 s TTL to expire")
            for tool in TOOLS * 2:
                r = dig(tool, fw.port, "alias.fwd.test", "A")
                assert r.sections["ANSWER"][0][2:] == ("CNAME", "host.fwd.test.") and r.data("A") == {"198.51.100.7"}, r
            assert count_log(log, "alias.fwd.test.", "A") == 1, open(log).read()
    finally:
        shutil.rmtree(d)


@case("upstream queries come from random ports with random IDs (RFC 5452)")
def _():
    fake = FakeUpstream()
    try:
        with dns("--forward", f"127.0.0.1:{fake.port}") as fw:
            for i in range(12):
                m = udp_ask(fw.port, make_query(f"r{i}.fake.test"), timeout=5)
                assert m.rdatas("A") == {"192.0.2.77"}, m.answer
        ports = {p for p, _ in fake.seen}
        ids = [q for _, q in fake.seen]
        assert len(fake.seen) >= 12, fake.seen
        assert len(ports) >= 10, f"source ports: {sorted(ports)}"
        assert len(set(ids)) >= 10, f"IDs: {ids}"
        steps = {(b - a) % 65536 for a, b in zip(ids, ids[1:])}
        assert len(steps) > 3, f"IDs in a predictable sequence: {ids}"
    finally:
        fake.close()


@case("an upstream answering SERVFAIL or REFUSED is passed over for the next")
def _():
    bad = FakeUpstream(rcode=2)
    refusing = FakeUpstream(rcode=5)
    d = tempfile.mkdtemp(prefix="eddy-dns-")
    log = os.path.join(d, "upstream.log")
    try:
        with dns("--zone", UPSTREAM, "--query-log", log) as up, \
                dns("--forward", f"127.0.0.1:{bad.port}", "--forward", f"127.0.0.1:{refusing.port}",
                    "--forward", f"127.0.0.1:{up.port}") as fw:
            r = dig("dig", fw.port, "host.fwd.test", "A", time_s=6)
            assert r.status == "NOERROR" and r.data("A") == {"198.51.100.7"}, r
            assert bad.queries >= 1 and refusing.queries >= 1, (bad.queries, refusing.queries)
    finally:
        bad.close()
        refusing.close()
        shutil.rmtree(d)


@case("big answers through the forwarder: TC=1 to a client without EDNS, complete over TCP")
def _():
    d = tempfile.mkdtemp(prefix="eddy-dns-")
    log = os.path.join(d, "upstream.log")
    try:
        with dns("--zone", UPSTREAM, "--query-log", log) as up, \
                dns("--forward", f"127.0.0.1:{up.port}") as fw:
            m = udp_ask(fw.port, make_query("manya.fwd.test"))
            assert m.tc and len(m.raw) <= 512 and m.ra, (m.tc, len(m.raw))
            m = tcp_ask(fw.port, make_query("manya.fwd.test"))
            assert not m.tc and len(m.rdatas("A")) == 40, (m.tc, len(m.answer))
            m = udp_ask(fw.port, make_query("manya.fwd.test", edns=1232))
            assert not m.tc and len(m.rdatas("A")) == 40, (m.tc, len(m.answer))
            # 4 KB of TXT: the upstream truncates over UDP, so the forwarder
            # must have asked it again over TCP.
            for tool in TOOLS:
                r = dig(tool, fw.port, "bigtxt.fwd.test", "TXT", "+tcp", time_s=5)
                assert r.status == "NOERROR" and len(r.data("TXT")) == 20, r
            assert any(x.startswith("tcp bigtxt.fwd.test. TXT") for x in open(log).read().splitlines()), \
                open(log).read()
            r = dig("dig", fw.port, "bigtxt.fwd.test", "TXT", "+bufsize=1232", "+ignore")
            assert r.status == "NOERROR" and "tc" in r.flags, r
            # A client that takes 8 KB over UDP gets all 4 KB at once.
            m = udp_ask(fw.port, make_query("bigtxt.fwd.test", "TXT", edns=8192))
            assert not m.tc and len(m.rdatas("TXT")) == 20 and len(m.raw) > 4000, (m.tc, len(m.raw))
    finally:
        shutil.rmtree(d)


@case("with --forward, RA is set on every answer, its own zones' too (RFC 1035 4.1.1)")
def _():
    d = tempfile.mkdtemp(prefix="eddy-dns-")
    try:
        with dns("--zone", UPSTREAM) as up, \
                dns("--zone", EXAMPLE, "--forward", f"127.0.0.1:{up.port}") as fw:
            # RA says whether the server offers recursion, whatever the
            # answer's source: this one does.
            for name, aa in (("host.fwd.test", False), ("www.example.com", True)):
                for ask in (udp_ask, tcp_ask):
                    m = ask(fw.port, make_query(name))
                    assert m.rcode == 0 and m.aa == aa, (name, m.status(), m.aa)
                    assert m.ra, f"{name} ({'authoritative' if aa else 'forwarded'}): RA clear, flags {m.flags:04x}"
    finally:
        shutil.rmtree(d)


@case("failover: a closed upstream port, then a silent one, then the real one")
def _():
    d = tempfile.mkdtemp(prefix="eddy-dns-")
    log = os.path.join(d, "upstream.log")
    closed = free_udp_tcp_port()
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        with dns("--zone", UPSTREAM, "--query-log", log) as up:
            with dns("--forward", f"127.0.0.1:{closed}", "--forward", f"127.0.0.1:{up.port}") as fw:
                r = dig("dig", fw.port, "host.fwd.test", "A", time_s=6)
                assert r.status == "NOERROR" and r.data("A") == {"198.51.100.7"}, r
            with dns("--forward", f"127.0.0.1:{silent.getsockname()[1]}",
                     "--forward", f"127.0.0.1:{up.port}") as fw:
                start = time.time()
                r = dig("kdig", fw.port, "host.fwd.test", "AAAA", time_s=8)
                assert r.status == "NOERROR" and r.data("AAAA") == {"2001:db8::7"}, r
                assert time.time() - start < 8
                silent.settimeout(1)
                assert silent.recv(512), "the silent upstream was never asked"
    finally:
        silent.close()
        shutil.rmtree(d)


@case("spoofed answers (another port, wrong ID, wrong question) are ignored")
def _():
    fake = FakeUpstream()
    try:
        with dns("--forward", f"127.0.0.1:{fake.port}") as fw:
            for tool in TOOLS:
                r = dig(tool, fw.port, f"spoof-{tool}.test", "A", time_s=5)
                assert r.status == "NOERROR" and r.data("A") == {"192.0.2.77"}, r
                assert "ra" in r.flags, r
            m = udp_ask(fw.port, make_query("raw.spoof.test", qid=4242), timeout=5)
            assert m.id == 4242 and m.rdatas("A") == {"192.0.2.77"}, m.answer
            assert fake.queries >= 3, fake.queries
    finally:
        fake.close()


@case("an upstream answer with TC=1 is asked again over TCP")
def _():
    fake = FakeUpstream(tc=True)
    try:
        with dns("--forward", f"127.0.0.1:{fake.port}") as fw:
            r = dig("dig", fw.port, "tc.fake.test", "A", time_s=5)
            assert r.status == "NOERROR" and r.data("A") == {"192.0.2.78"}, r
            assert fake.tcp_queries == 1, fake.tcp_queries
    finally:
        fake.close()


@case("identical questions in flight share one upstream query")
def _():
    gate = threading.Event()
    fake = FakeUpstream(gate=gate)
    d = tempfile.mkdtemp(prefix="eddy-dns-")
    log = os.path.join(d, "fw.log")
    socks = []
    try:
        with dns("--forward", f"127.0.0.1:{fake.port}", "--query-log", log) as fw:
            for i in range(5):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.settimeout(10)
                s.connect(("127.0.0.1", fw.port))
                s.send(make_query("shared.fake.test", qid=100 + i))
                socks.append(s)
            # All five received by the forwarder before the upstream answers.
            wait_for(lambda: count_log(log, "shared.fake.test.", "A") == 5, what="five queries logged")
            wait_for(lambda: fake.queries >= 1, what="the upstream query")
            gate.set()
            for i, s in enumerate(socks):
                m = Msg(s.recv(65535))
                assert m.id == 100 + i and m.rdatas("A") == {"192.0.2.77"}, (i, m.id, m.answer)
            assert fake.queries == 1, f"{fake.queries} upstream queries for one question"
    finally:
        for s in socks:
            s.close()
        fake.close()
        shutil.rmtree(d)


@case("TCP answers go out as they are ready: a zone answer overtakes a forwarded one")
def _():
    gate = threading.Event()
    fake = FakeUpstream(gate=gate)
    try:
        with dns("--zone", EXAMPLE, "--forward", f"127.0.0.1:{fake.port}") as fw:
            with socket.create_connection(("127.0.0.1", fw.port), timeout=10) as s:
                s.sendall(frame(make_query("slow.fake.test", qid=1)) +
                          frame(make_query("www.example.com", qid=2)))
                m = Msg(read_frame(s))
                assert m.id == 2 and m.rdatas("A") == {"192.0.2.80"} and m.aa, (m.id, m.answer)
                gate.set()
                m = Msg(read_frame(s))
                assert m.id == 1 and m.rdatas("A") == {"192.0.2.77"} and m.ra, (m.id, m.answer)
    finally:
        fake.close()


@case("DNS over TLS (RFC 7858) on a tls: endpoint, with kdig")
def _():
    port = free_udp_tcp_port()
    tls = f"tls:{port}:interface=127.0.0.1:certKey={cert('server.pem')}:privateKey={cert('server.key')}"
    with DnsServer(EDDY, "dns", "--zone", EXAMPLE, listen=tls, port=port) as srv:
        assert srv.wait_log("dns: serving", 15), srv.stderr()
        out = subprocess.run(["kdig", "@127.0.0.1", "-p", str(port), "+tls", "+timeout=5",
                              "+retry=0", "www.example.com", "A"],
                             capture_output=True, text=True, timeout=30).stdout
        assert "192.0.2.80" in out and "NOERROR" in out, out
        assert "TLS" in out, out


@case("a TCP client that half-closes still gets every answer, the forwarded one too")
def _():
    gate = threading.Event()
    fake = FakeUpstream(gate=gate)
    try:
        with dns("--zone", EXAMPLE, "--forward", f"127.0.0.1:{fake.port}") as fw:
            with socket.create_connection(("127.0.0.1", fw.port), timeout=10) as s:
                s.sendall(frame(make_query("slow.fake.test", qid=1)) +
                          frame(make_query("www.example.com", qid=2)))
                s.shutdown(socket.SHUT_WR)
                assert Msg(read_frame(s)).id == 2
                gate.set()
                m = Msg(read_frame(s))
                assert m.id == 1 and m.rdatas("A") == {"192.0.2.77"}, (m.id, m.answer)
                assert s.recv(1) == b"", "the server closes after the last answer"
    finally:
        fake.close()


@case("the cache holds --cache-size answers, the least recently used going first")
def _():
    d = tempfile.mkdtemp(prefix="eddy-dns-")
    log = os.path.join(d, "upstream.log")
    try:
        with dns("--zone", UPSTREAM, "--query-log", log) as up, \
                dns("--forward", f"127.0.0.1:{up.port}", "--cache-size", "20") as fw:
            for i in range(30):
                m = udp_ask(fw.port, make_query(f"n{i}.fwd.test"))
                assert m.rcode == 3, (i, m.status())
            # The last ones are still cached; the first ones were pushed out.
            for i in range(25, 30):
                assert udp_ask(fw.port, make_query(f"n{i}.fwd.test")).rcode == 3
                assert count_log(log, f"n{i}.fwd.test.", "A") == 1, (i, "not cached")
            assert udp_ask(fw.port, make_query("n0.fwd.test")).rcode == 3
            assert count_log(log, "n0.fwd.test.", "A") == 2, "n0 still cached past the bound"
    finally:
        shutil.rmtree(d)


@case("no upstream answers: SERVFAIL, in bounded time")
def _():
    closed = free_udp_tcp_port()
    with dns("--forward", f"127.0.0.1:{closed}") as fw:
        for tool in TOOLS:
            start = time.time()
            r = dig(tool, fw.port, "host.fwd.test", "A", time_s=8)
            assert r.status == "SERVFAIL" and not r.sections["ANSWER"], r
            assert time.time() - start < 8
        assert udp_ask(fw.port, make_query("x.fwd.test"), timeout=8).rcode == 2


report()
