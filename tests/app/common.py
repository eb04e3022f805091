"""What the program tests share: cases, a running eddy server, sockets."""
import os
import signal
import socket
import subprocess
import time

results = []


def case(name):
    """Runs the decorated function at once as one named case."""
    def wrap(fn):
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
    print(f"passed={len(results) - failed} failed={failed}")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


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
    endpoint, whose address `probe` connects to); killed on exit."""

    def __init__(self, eddy, command, *extra, listen=None, probe=None):
        self.port = free_port()
        self.listen = listen or f"tcp:{self.port}:interface=127.0.0.1"
        self.p = subprocess.Popen([eddy, command, "--listen", self.listen, *extra],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.p.poll() is not None:
                raise AssertionError("eddy exited: " + self.p.stderr.read())
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

    def stop(self, timeout=15):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            _, err = self.p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.communicate()
            raise AssertionError("eddy did not stop on SIGTERM")
        return self.p.returncode, err

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.p.kill()
            self.p.communicate()
