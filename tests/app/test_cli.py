#!/usr/bin/env python3
"""The eddy program's command line: help, version, and usage errors.

Usage: test_cli.py PATH_TO_EDDY. Prints one line per case and ends with
"passed=P failed=F".
"""
import subprocess
import sys

EDDY = sys.argv[1]
results = []


def run(*args):
    p = subprocess.run([EDDY, *args], capture_output=True, text=True, timeout=10)
    return p.returncode, p.stdout, p.stderr


def case(name):
    def wrap(fn):
        try:
            fn()
            results.append((name, None))
        except AssertionError as e:
            results.append((name, str(e) or "assertion failed"))
        return fn
    return wrap


@case("help lists the commands and exits 0")
def _():
    rc, out, _ = run("--help")
    assert rc == 0, rc
    assert "Usage: eddy" in out and "Commands:" in out, out


@case("version prints the version and exits 0")
def _():
    for flag in ("--version", "-V"):
        rc, out, _ = run(flag)
        assert rc == 0 and out.startswith("eddy 0."), (rc, out)
    rc, out, _ = run("version")
    assert rc == 0 and out.startswith("eddy "), (rc, out)


@case("unknown option names the option and exits 2")
def _():
    rc, out, err = run("--frobnicate")
    assert rc == 2, rc
    assert "'--frobnicate'" in err and out == "", (out, err)


@case("unknown command names the command and exits 2")
def _():
    rc, _, err = run("no-such-command")
    assert rc == 2 and "unknown command 'no-such-command'" in err, (rc, err)


@case("no command prints usage on stderr and exits 2")
def _():
    rc, out, err = run()
    assert rc == 2 and "Usage: eddy" in err and out == "", (rc, out, err)


@case("log level accepts the four levels, both spellings")
def _():
    for level in ("error", "warn", "info", "debug"):
        assert run("--log-level", level, "version")[0] == 0, level
        assert run("--log-level=" + level, "version")[0] == 0, level


@case("bad or missing log level exits 2 with a message")
def _():
    rc, _, err = run("--log-level", "loud", "version")
    assert rc == 2 and "unknown log level 'loud'" in err, (rc, err)
    rc, _, err = run("--log-level")
    assert rc == 2 and "needs a value" in err, (rc, err)


@case("help for one command and for an unknown one")
def _():
    rc, out, _ = run("help", "version")
    assert rc == 0 and "version" in out, (rc, out)
    rc, _, err = run("help", "nope")
    assert rc == 2 and "unknown command 'nope'" in err, (rc, err)


@case("extra argument to version exits 2")
def _():
    rc, _, err = run("version", "extra")
    assert rc == 2 and "'extra'" in err, (rc, err)


failed = 0
for name, err in results:
    print(("ok     " if err is None else "FAILED ") + name + ("" if err is None else ": " + err))
    failed += err is not None
print(f"passed={len(results) - failed} failed={failed}")
