#!/usr/bin/env python3
"""The eddy program's command line: help, version, and usage errors.

Usage: test_cli.py PATH_TO_EDDY. Prints one line per case and ends with
"passed=P failed=F".
"""
import os
import re
import subprocess
import sys

EDDY = sys.argv[1]
results = []


def run(*args):
    p = subprocess.run([EDDY, *args], capture_output=True, text=True, timeout=10)
    return p.returncode, p.stdout, p.stderr


def case(name):
    def wrap(fn):
        print("RUN " + name, file=sys.stderr, flush=True)  # names a hang
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


# ---- The man page (docs/eddy.1.scd) agrees with --help ----

MAN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                   "docs", "eddy.1.scd")
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])")


def man_source():
    with open(MAN, encoding="utf-8") as f:
        return f.read()


def help_commands():
    rc, out, _ = run("--help")
    assert rc == 0, rc
    listing = out.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    names = [line.split()[0] for line in listing.splitlines() if line.strip()]
    assert names, out
    return names


def help_options(*args):
    """The options a help text lists: the first word(s) of its option lines."""
    rc, out, _ = run(*args)
    assert rc == 0, (args, rc)
    found = set()
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("-"):
            found.update(OPTION.findall(re.split(r"\s{2,}", line)[0]))
    return found, out


def man_section(text, heading):
    """The text of '## heading' (or '# heading') up to the next heading of
    the same or a higher level."""
    m = re.search(r"^(#+) " + re.escape(heading) + r"\n", text, re.M)
    assert m, "no section '%s' in the man page" % heading
    level = len(m.group(1))
    rest = text[m.end():]
    end = re.search(r"^#{1,%d} " % level, rest, re.M)
    return rest[:end.start()] if end else rest


def man_options(section):
    """Options the section defines: those on its term lines (not indented)."""
    found = set()
    for line in section.splitlines():
        if line.startswith("*-"):
            found.update(OPTION.findall(line))
    return found


@case("the man page has a section for every command, and they agree")
def _():
    man = man_source()
    for name in help_commands():
        section = man_section(man, name)
        assert ("*eddy " + name) in section, "no synopsis for " + name
        if name in ("help", "version"):
            continue
        listed, out = help_options("help", name)
        assert listed, "no options in 'eddy help %s': %s" % (name, out)
        defined = man_options(section)
        assert listed <= defined, "eddy help %s: not in the man page: %s" % (
            name, sorted(listed - defined))
        # Every command takes -h/--help; its help text need not say so.
        extra = defined - listed - {"-h", "--help"}
        assert not extra, "man page %s: not in 'eddy help %s': %s" % (
            name, name, sorted(extra))
        alt, _ = help_options(name, "--help")
        assert alt == listed, (name, alt, listed)


@case("the man page defines every global option of --help")
def _():
    listed, out = help_options("--help")
    assert {"--help", "--version", "--log-level"} <= listed, listed
    defined = man_options(man_section(man_source(), "GLOBAL OPTIONS"))
    assert listed == defined, (sorted(listed), sorted(defined))


@case("every option anywhere in a help text appears in the man page")
def _():
    man = man_source()
    texts = [run("--help")[1]] + [run("help", n)[1] for n in help_commands()]
    for text in texts:
        for opt in set(OPTION.findall(text)):
            if opt.startswith("--"):
                assert re.search(r"(?<![\w-])" + re.escape(opt) + r"(?![\w-])", man), opt


@case("the man page covers endpoints, signals, exit statuses, environment")
def _():
    man = man_source()
    for heading in ("ENDPOINTS", "SIGNALS", "EXIT STATUS", "ENVIRONMENT"):
        man_section(man, heading)
    for kind in ("tcp:", "tcp6:", "unix:", "fd:", "systemd:", "tls:", "ssl:"):
        assert "*" + kind in man, kind
    for word in ("SIGTERM", "SIGINT", "EDDY_BACKEND", "EDDY_THREADPOOL_SIZE"):
        assert word in man, word
    status = man_section(man, "EXIT STATUS")
    for code in ("*0*", "*1*", "*2*"):
        assert code in status, code


failed = 0
for name, err in results:
    print(("ok     " if err is None else "FAILED ") + name + ("" if err is None else ": " + err))
    failed += err is not None
print(f"passed={len(results) - failed} failed={failed}")
