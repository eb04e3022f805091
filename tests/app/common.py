"""What the program tests share: cases, a running eddy server, sockets."""
import contextlib
import fcntl
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time

results = []
skipped = []  # (name, why)
skip_reason = None


@contextlib.contextmanager
def skipping(why):
    """The cases defined inside do not run: each is counted as skipped,
    and report() says why (scripts/test.sh shows it in its summary)."""
    global skip_reason
    skip_reason = why
    try:
        yield
    finally:
        skip_reason = None


def case(name):
    """Runs the decorated function at once as one named case."""
    def wrap(fn):
        if skip_reason is not None:
            skipped.append((name, skip_reason))
            return fn
        # Names the case as it starts: if it hangs, scripts/test.sh reports
        # the last one.
        print("RUN " + name, file=sys.stderr, flush=True)
        try:
            fn()
            results.append((name, None))
        except Exception as e:  # a failed case, whatever went wrong
            results.append((name, f"{type(e).__name__}: {e}"))
        return fn
    return wrap


def report():
    failed = 0
    for name, err in results:
        print(("ok     " if err is None else "FAILED ") + name + ("" if err is None else ": " + err))
        failed += err is not None
    # One line per reason, however many cases it held back.
    reasons = {}
    for name, why in skipped:
        reasons[why] = reasons.get(why, 0) + 1
    for why, n in reasons.items():
        print(f"SKIP {n} case(s): {why}")
    tail = f" skipped={len(skipped)}" if skipped else ""
    print(f"passed={len(results) - failed} failed={failed}{tail}")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def certs_dir():
    """The test certificates (tests/tls/mkcerts.sh): $EDDY_TEST_CERTS, or
    made once per user under a lock, since suites run in parallel."""
    d = os.environ.get("EDDY_TEST_CERTS")
    if d:
        return d
    d = f"/tmp/eddy-test-certs-{os.getuid()}"
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run(["flock", d + ".lock", os.path.join(here, "..", "tls", "mkcerts.sh"), d],
                   check=True, stdout=subprocess.DEVNULL, timeout=120)
    return d


def cert(name):
    """The path of one file among the test certificates."""
    return os.path.join(certs_dir(), name)


def recv_all(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


class Server:
    """An eddy subcommand listening on a free loopback port (or the given
    endpoint, whose address `probe` connects to, or whose TCP port is
    `port`); killed on exit. With command None, eddy is a program of its
    own taking --listen (the examples)."""

    def __init__(self, eddy, command, *extra, listen=None, probe=None, nofile=None,
                 global_opts=(), port=None):
        self.port = port or free_port()  # port: the one `listen` names
        self.listen = listen or f"tcp:{self.port}:interface=127.0.0.1"

        def limits():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        # The log goes to a file: a pipe nobody reads would fill up and
        # block the server's writes to it. The server shares the file's
        # offset with us: with O_APPEND its writes go to the end even while
        # stderr() has moved the offset back to read, instead of
        # overwriting the start of the log.
        self.log = tempfile.TemporaryFile(mode="w+")
        fcntl.fcntl(self.log.fileno(), fcntl.F_SETFL,
                    fcntl.fcntl(self.log.fileno(), fcntl.F_GETFL) | os.O_APPEND)
        argv = [eddy, *global_opts, *([command] if command else []), "--listen", self.listen]
        self.p = subprocess.Popen([*argv, *extra],
                                  stdout=subprocess.DEVNULL, stderr=self.log, text=True,
                                  preexec_fn=limits)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.p.poll() is not None:
                raise AssertionError("eddy exited: " + self.stderr())
            try:
                if probe:
                    s = socket.socket(socket.AF_UNIX)
                    s.connect(probe)
                else:
                    s = socket.create_connection(("127.0.0.1", self.port), timeout=1)
                s.close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"eddy {command} did not start listening")

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def rss_kb(self):
        with open(f"/proc/{self.p.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stderr(self):
        self.log.seek(0)
        return self.log.read()

    def wait_log(self, text, timeout=5):
        """Waits until the server's log contains text; returns whether it
        did within timeout seconds."""
        deadline = time.time() + timeout
        while text not in self.stderr():
            if time.time() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def stop(self, timeout=15, signal_it=True):
        """SIGTERM (unless already sent: a second one while the server
        exits would find the default disposition restored) and wait."""
        if signal_it and self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise AssertionError("eddy did not stop on SIGTERM")
        return self.p.returncode, self.stderr()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.log.close()
