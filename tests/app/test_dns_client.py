#!/usr/bin/env python3
"""eddy's DNS client (include/eddy/resolver.h, through examples/dns-lookup)
against `eddy dns` on loopback: answers of every section, NXDOMAIN, a CNAME
chain, a truncated UDP answer asked again over TCP, the forwarder in
between, and a server that never answers.

    python3 tests/app/test_dns_client.py build/eddy build/dns-lookup
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import case, report  # noqa: E402

eddy, lookup = sys.argv[1], sys.argv[2]

ZONE = """$ORIGIN client.test.
$TTL 300
@       IN SOA ns hostmaster 1 3600 600 86400 60
        IN NS  ns
ns      IN A   127.0.0.1
www     IN A   192.0.2.1
www     IN AAAA 2001:db8::1
mail    IN MX  10 www
alias   IN CNAME alias2
alias2  IN CNAME www
""" + "".join(f'big IN TXT "{"x" * 60} {i:02d}"\n' for i in range(30))


def free_udp_tcp_port():
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket()
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise AssertionError("no free port")


class Dns:
    """eddy dns on a loopback port, UDP and TCP, until it says it serves."""

    def __init__(self, *args):
        self.port = free_udp_tcp_port()
        self.log = tempfile.TemporaryFile(mode="w+")
        self.p = subprocess.Popen(
            [eddy, "dns", "--listen", f"udp:{self.port}:interface=127.0.0.1",
             "--listen", f"tcp:{self.port}:interface=127.0.0.1", *args],
            stdout=subprocess.DEVNULL, stderr=self.log, text=True)
        deadline = time.time() + 10
        while time.time() < deadline:
            self.log.seek(0)
            if "dns: serving" in self.log.read():
                return
            if self.p.poll() is not None:
                break
            time.sleep(0.02)
        self.log.seek(0)
        raise AssertionError("eddy dns did not start: " + self.log.read())

    def close(self):
        self.p.terminate()
        self.p.wait(timeout=10)
        self.log.close()


def ask(server, name, qtype="A"):
    r = subprocess.run([lookup, "--server", server, name, qtype],
                       capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


tmp = tempfile.mkdtemp()
zone = os.path.join(tmp, "client.zone")
with open(zone, "w") as f:
    f.write(ZONE)
auth = Dns("--zone", zone)
server = f"127.0.0.1:{auth.port}"


@case("an address, with its flags and rcode")
def _():
    rc, out, err = ask(server, "www.client.test", "A")
    assert rc == 0, err
    assert "status: NOERROR" in out and " aa" in out, out
    assert "www.client.test.\t300\tIN\tA\t192.0.2.1" in out, out


@case("an MX answer brings its target's addresses in the additional section")
def _():
    rc, out, _ = ask(server, "mail.client.test", "MX")
    assert rc == 0
    assert "10 www.client.test." in out, out
    assert "ADDITIONAL SECTION" in out and "2001:db8::1" in out, out


@case("NXDOMAIN is an answer, with the SOA in the authority section")
def _():
    rc, out, _ = ask(server, "nope.client.test", "A")
    assert rc == 0
    assert "status: NXDOMAIN" in out, out
    assert "AUTHORITY SECTION" in out and "SOA" in out, out


@case("a CNAME chain is followed to the address")
def _():
    rc, out, _ = ask(server, "alias.client.test", "A")
    assert rc == 0
    assert out.count("CNAME") == 2 and "192.0.2.1" in out, out


@case("an answer truncated over UDP is asked again over TCP, whole")
def _():
    rc, out, _ = ask(server, "big.client.test", "TXT")
    assert rc == 0
    assert out.count("\tTXT\t") == 30, out
    assert " tc" not in out.split("\n")[1], out


@case("through eddy's forwarder: the same answers, with RA and without AA")
def _():
    fwd = Dns("--forward", server)
    try:
        rc, out, _ = ask(f"127.0.0.1:{fwd.port}", "www.client.test", "AAAA")
        assert rc == 0
        assert "2001:db8::1" in out, out
        flags = out.split("\n")[1]
        assert " ra" in flags and " aa" not in flags, out
        rc, out, _ = ask(f"127.0.0.1:{fwd.port}", "big.client.test", "TXT")
        assert out.count("\tTXT\t") == 30, out
    finally:
        fwd.close()


@case("a server that never answers: no answer, an error, exit 1")
def _():
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        start = time.time()
        rc, out, err = ask(f"127.0.0.1:{silent.getsockname()[1]}", "www.client.test")
        assert rc == 1, (rc, out, err)
        assert "timed out" in err.lower() or "timeout" in err.lower(), err
        assert time.time() - start < 25
    finally:
        silent.close()


auth.close()
shutil.rmtree(tmp, ignore_errors=True)
report()
