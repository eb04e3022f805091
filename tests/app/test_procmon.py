#!/usr/bin/env python3
"""`eddy procmon`: usage errors, output lines prefixed with their name,
restarts with a doubling delay that goes back to the first after a steady
run, and a stop that leaves nothing running.

Usage: test_procmon.py PATH_TO_EDDY. Ends with "passed=P failed=F".
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import case, report  # noqa: E402

EDDY = sys.argv[1]


def run(*args):
    p = subprocess.run([EDDY, "procmon", *args], capture_output=True, text=True, timeout=10)
    return p.returncode, p.stdout, p.stderr


class Procmon:
    """A running `eddy procmon`; its log goes to a file (see common.Server)."""

    def __init__(self, *args):
        self.log = tempfile.TemporaryFile(mode="w+")
        self.p = subprocess.Popen([EDDY, "procmon", *args], stdout=subprocess.DEVNULL,
                                  stderr=self.log, text=True)

    def text(self):
        self.log.seek(0)
        return self.log.read()

    def wait_for(self, pattern, timeout=10, count=1):
        """The log's lines matching pattern, once there are count of them."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = [line for line in self.text().splitlines() if re.search(pattern, line)]
            if len(found) >= count:
                return found
            if self.p.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {count} line(s) matching {pattern!r} in:\n{self.text()}")

    def stop(self, sig=signal.SIGTERM, timeout=15):
        self.p.send_signal(sig)
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise AssertionError("procmon did not stop:\n" + self.text())
        return self.p.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.log.close()


def stamp(line):
    """Seconds of the log line's timestamp (within the day)."""
    m = re.match(r"\S+T(\d+):(\d+):(\d+\.\d+)Z", line)
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def gone(pid):
    """The process has ended (a zombie waiting for init counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@case("no --process, a malformed one, or a duplicate name: exit 2 with a message")
def _():
    for args, message in [
        ((), "at least one --process"),
        (("--process", "noequals"), "NAME=COMMAND"),
        (("--process", "=cmd"), "NAME=COMMAND"),
        (("--process", "name="), "NAME=COMMAND"),
        (("--process",), "NAME=COMMAND"),
        (("--process", "a=true", "--process", "a=false"), "duplicate process name 'a'"),
        (("--process", "a=true", "--kill-timeout", "soon"), "--kill-timeout"),
        (("--process", "a=true", "--kill-timeout", "-1"), "--kill-timeout"),
        (("--process", "a=true", "--min-restart-delay", "5", "--max-restart-delay", "1"),
         "above"),
        (("--process", "a=true", "--frobnicate"), "unknown option '--frobnicate'"),
    ]:
        rc, out, err = run(*args)
        assert rc == 2, (args, rc, err)
        assert message in err, (args, err)
        assert out == "", (args, out)


@case("help describes the options")
def _():
    rc, out, _ = run("--help")
    assert rc == 0 and "--process NAME=COMMAND" in out and "--kill-timeout" in out, out


@case("each output line is logged with its name, stdout and stderr alike")
def _():
    with Procmon("--process", "greet=echo hello; echo oops >&2; printf 'no newline'; exec sleep 30",
                 "--process", "other=echo from other; exec sleep 30") as pm:
        pm.wait_for(r"info: greet: hello$")
        pm.wait_for(r"info: greet \(stderr\): oops$")
        pm.wait_for(r"info: other: from other$")
        assert pm.stop() == 0, pm.text()
        pm.wait_for(r"info: greet: no newline$")
        pm.wait_for(r"procmon: stopped")


@case("a line longer than 4096 bytes is logged cut, and the next one whole")
def _():
    with Procmon("--process",
                 "long=printf '%5000s' | tr ' ' x; echo; echo after; exec sleep 30") as pm:
        pm.wait_for(r"info: long: x{4096} \[cut: longer than 4096 bytes\]$")
        pm.wait_for(r"info: long: after$")
        assert pm.stop() == 0, pm.text()


@case("by default a process that exits is restarted after 1 s, then 2 s")
def _():
    # The doubling, the cap and the reset are checked with short delays
    # below; this checks the defaults without waiting through them all.
    with Procmon("--process", "quick=echo run") as pm:
        delays = pm.wait_for(r"quick: restarting in", count=2)
        assert "in 1 s" in delays[0] and "in 2 s" in delays[1], delays
        starts = pm.wait_for(r"procmon: quick: started", count=2)
        gap = stamp(starts[1]) - stamp(starts[0])
        assert 0.9 <= gap < 1.8, gap
        assert pm.stop() == 0, pm.text()


@case("the delay stops at the maximum, and is back to the first after a steady run")
def _():
    # Fails fast four times (0.05, 0.1, 0.2, 0.2: capped), then its runs
    # last longer than the threshold and the delay is back at 0.05 s.
    state = tempfile.NamedTemporaryFile(delete=False)
    state.close()
    script = (f"n=$(cat {state.name} | wc -c); printf x >> {state.name}; "
              "if [ $n -ge 4 ]; then sleep 0.4; fi; exit 1")
    with Procmon("--process", f"flaky={script}", "--min-restart-delay", "0.05",
                 "--max-restart-delay", "0.2", "--threshold", "0.3") as pm:
        delays = pm.wait_for(r"flaky: restarting in", count=6, timeout=15)
        said = [re.search(r"in ([0-9.]+) s", d).group(1) for d in delays]
        assert said == ["0.05", "0.1", "0.2", "0.2", "0.05", "0.05"], said
        assert pm.stop() == 0, pm.text()
    os.unlink(state.name)


@case("SIGTERM stops every process and what it started, then exits 0")
def _():
    with Procmon("--process", "fam=sleep 300 & echo child $!; exec sleep 300",
                 "--process", "solo=exec sleep 300") as pm:
        line = pm.wait_for(r"fam: child \d+")[0]
        child = int(line.rsplit(" ", 1)[1])
        leader = int(pm.wait_for(r"fam: started, pid \d+")[0].rsplit(" ", 1)[1])
        pm.wait_for(r"solo: started")
        t0 = time.time()
        assert pm.stop() == 0, pm.text()
        assert time.time() - t0 < 3, "stop took the kill timeout: TERM was not enough?"
        pm.wait_for(r"every process has ended")
        for pid in (leader, child):
            deadline = time.time() + 2
            while not gone(pid) and time.time() < deadline:
                time.sleep(0.02)
            assert gone(pid), f"pid {pid} still running:\n" + pm.text()


@case("what a command leaves running is killed when it exits; its lines are still logged")
def _():
    with Procmon("--process", "bg=(echo from-bg; exec sleep 30) & echo pid $!; sleep 0.2",
                 "--min-restart-delay", "5") as pm:
        pid = int(pm.wait_for(r"bg: pid \d+")[0].rsplit(" ", 1)[1])
        pm.wait_for(r"bg: from-bg$")
        pm.wait_for(r"bg: exited with status 0")
        deadline = time.time() + 2
        while not gone(pid) and time.time() < deadline:
            time.sleep(0.02)
        assert gone(pid), f"pid {pid} outlived its command:\n" + pm.text()
        assert pm.stop() == 0, pm.text()


@case("a process that ignores SIGTERM gets SIGKILL after --kill-timeout")
def _():
    with Procmon("--process", "stubborn=trap '' TERM; echo ready; while :; do sleep 0.1; done",
                 "--kill-timeout", "1") as pm:
        pm.wait_for(r"stubborn: ready")
        t0 = time.time()
        assert pm.stop() == 0, pm.text()
        took = time.time() - t0
        assert 0.9 <= took < 4, took
        pm.wait_for(r"stubborn: killed by signal 9")


@case("SIGINT stops too")
def _():
    with Procmon("--process", "s=exec sleep 300") as pm:
        pm.wait_for(r"s: started")
        assert pm.stop(signal.SIGINT) == 0, pm.text()
        pm.wait_for(r"killed by signal 15")


@case("a second signal kills at once instead of waiting")
def _():
    with Procmon("--process", "stubborn=trap '' TERM; echo ready; exec sleep 300",
                 "--kill-timeout", "60") as pm:
        pm.wait_for(r"stubborn: ready")
        pm.p.send_signal(signal.SIGTERM)
        pm.wait_for(r"stopping 1 process")
        t0 = time.time()
        assert pm.stop() == 0, pm.text()
        assert time.time() - t0 < 5
        pm.wait_for(r"stubborn: killed by signal 9")


report()
