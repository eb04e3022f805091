#!/usr/bin/env python3
"""`eddy chat`'s page in a real browser: headless Chromium, driven over the
Chrome DevTools Protocol (python3-websockets), with an nc-style line client
in the same room. For each transport (WebSocket; server-sent events with
POST; long-polling, forced with ?transport=), the page picks a name and
sends a message that the line client receives, and shows what the line
client sends; markup in a message stays text. With WebSocket and
EventSource taken away before the page loads, it falls back by itself.
A screenshot of each page is saved as a test artifact:
$EDDY_TEST_ARTIFACTS/chat-screenshot*.png, or next to the eddy binary.

Usage: test_chat_web.py PATH_TO_EDDY. Ends with "passed=P failed=F[
skipped=S]"; without chromium or python3-websockets the cases are
skipped, with the reason. Every wait is bounded.
"""
import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Server, case, free_port, report, skipping  # noqa: E402

try:
    import websockets
except ImportError:  # Debian's python3-websockets, seen from another python3
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        import websockets
    except ImportError:
        websockets = None

EDDY = sys.argv[1]
ARTIFACTS = os.environ.get("EDDY_TEST_ARTIFACTS") or os.path.dirname(os.path.abspath(EDDY))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Line:
    """An nc-style client of the chat's --line endpoint."""

    def __init__(self, port, name, srv):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.s.sendall(name.encode() + b"\n")
        assert srv.wait_log(f"chat: {name} joined"), srv.stderr()

    def send(self, text):
        self.s.sendall(text.encode() + b"\n")

    def wait_line(self, want, timeout=15):
        """Reads lines until want; fails after timeout seconds."""
        deadline = time.time() + timeout
        seen = []
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                if line.decode() == want:
                    return
                seen.append(line)
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError(f"the line client never got {want!r}; got {seen!r}")
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                continue  # the deadline check above reports it
            if not chunk:
                raise AssertionError("the line client's connection ended")
            self.buf += chunk

    def close(self):
        self.s.close()


class Browser:
    """Headless Chromium with a profile of its own, and its DevTools
    endpoint read from the profile's DevToolsActivePort file."""

    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="eddy-chromium-")
        self.p = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
             "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
             f"--user-data-dir={self.profile}", "--window-size=800,600", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.time() + 30
        while True:
            if self.p.poll() is not None:
                raise AssertionError(f"chromium exited with {self.p.returncode}")
            try:
                with open(port_file) as f:
                    lines = f.read().split("\n")
                if len(lines) >= 2 and lines[0].strip():
                    self.port = int(lines[0])
                    break
            except (FileNotFoundError, ValueError):
                pass
            if time.time() > deadline:
                raise AssertionError("chromium wrote no DevToolsActivePort within 30 s")
            time.sleep(0.05)

    def page_ws_url(self):
        """The DevTools WebSocket of the first page target."""
        deadline = time.time() + 10
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list",
                                        timeout=10) as r:
                targets = json.load(r)
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
            if time.time() > deadline:
                raise AssertionError(f"no page target: {targets}")
            time.sleep(0.05)

    def close(self):
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    """One page over the DevTools protocol: commands and JavaScript."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0

    async def call(self, method, timeout=15, **params):
        self.next_id += 1
        my = self.next_id
        await self.ws.send(json.dumps({"id": my, "method": method, "params": params}))
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError(f"no answer to {method} within {timeout} s")
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), left))
            if msg.get("id") == my:  # events on the way are not needed
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg["result"]

    async def eval(self, expr):
        r = await self.call("Runtime.evaluate", expression=expr, returnByValue=True,
                            awaitPromise=True)
        if "exceptionDetails" in r:
            raise AssertionError(f"{expr}: {r['exceptionDetails']}")
        return r["result"].get("value")

    async def wait(self, expr, what, timeout=15):
        deadline = time.time() + timeout
        # Until the page has loaded, its elements are not there yet.
        expr = f"(() => {{ try {{ return !!({expr}); }} catch (e) {{ return false; }} }})()"
        while not await self.eval(expr):
            if time.time() > deadline:
                state = await self.eval("document.body && document.body.innerText")
                raise AssertionError(f"{what}: not within {timeout} s (page: {state})")
            await asyncio.sleep(0.05)

    async def type_into(self, field, text):
        """Focuses the input, types text as a user would and presses
        Enter (which submits its form)."""
        await self.eval(f"document.getElementById({json.dumps(field)}).focus() || true")
        await self.call("Input.insertText", text=text)
        for kind in ("rawKeyDown", "char", "keyUp"):
            await self.call("Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter",
                            windowsVirtualKeyCode=13, nativeVirtualKeyCode=13,
                            **({"text": "\r"} if kind == "char" else {}))

    async def screenshot(self, path):
        r = await self.call("Page.captureScreenshot", format="png")
        data = base64.b64decode(r["data"])
        assert data.startswith(b"\x89PNG\r\n\x1a\n"), data[:16]
        with open(path, "wb") as f:
            f.write(data)
        return len(data)


# The page's state, as JavaScript expressions.
def OPEN(transport):
    return ("document.getElementById('status').dataset.state === 'open' && "
            f"document.body.dataset.transport === {json.dumps(transport)}")


def SHOWN(name, text):
    return ("Array.from(document.querySelectorAll('#messages li')).some(li => "
            f"li.querySelector('.name').textContent === {json.dumps(name)} && "
            f"li.querySelector('.text').textContent === {json.dumps(text)})")


def SET_VALUE(field, value):
    return (f"(() => {{ const i = document.getElementById({json.dumps(field)}); "
            f"i.value = {json.dumps(value)}; return true; }})()")


def CLICK(selector):
    return (f"(() => {{ document.querySelector({json.dumps(selector)}).click(); "
            "return true; })()")


async def converse(browser, srv, line, transport, query, shot, before_load=None):
    """Loads the page, waits until it is connected by transport, talks
    both ways with the line client, checks escaping, takes a screenshot."""
    async with websockets.connect(browser.page_ws_url(), max_size=64 << 20,
                                  open_timeout=15, close_timeout=5) as ws:
        page = Page(ws)
        await page.call("Page.enable")
        if before_load:
            await page.call("Page.addScriptToEvaluateOnNewDocument", source=before_load)
        await page.call("Page.navigate", url=f"http://127.0.0.1:{srv.port}/{query}")
        await page.wait(OPEN(transport), f"the page connected by {transport}")
        who = f"web-{transport}"
        await page.type_into("name", who)
        await page.wait("!document.getElementById('talk').hidden", "the talk form shown")

        text = f"hello from the page over {transport}"
        await page.type_into("text", text)
        try:
            line.wait_line(f"{who}: {text}")
        except AssertionError as e:
            raise AssertionError(f"{e}; the page says: {await page.eval('document.body.innerText')}")
        # And with the button, a second message.
        await page.eval(SET_VALUE("text", "and a click"))
        await page.eval(CLICK("#talk button"))
        line.wait_line(f"{who}: and a click")
        await page.wait(SHOWN(who, text), "the page's own message shown")
        await page.wait("document.getElementById('text').value === ''", "the input cleared")

        reply = f"hello page, this is the terminal ({transport})"
        line.send(reply)
        await page.wait(SHOWN("nc", reply), "the line client's message in the DOM")

        evil = "<img src=x onerror=\"window.pwned=1\"><b>bold?</b>"
        line.send(evil)
        await page.wait(SHOWN("nc", evil), "the markup shown as text")
        assert await page.eval("document.querySelectorAll('#messages img, #messages b')"
                               ".length === 0 && window.pwned === undefined"), \
            "a message became markup"
        size = await page.screenshot(os.path.join(ARTIFACTS, shot))
        assert size > 1000, size


def run_case(transport, query, shot, before_load=None):
    line_port = free_port()
    with Server(EDDY, "chat", "--line", f"tcp:{line_port}:interface=127.0.0.1") as srv:
        # The web port answers first: the line one is opened after it.
        assert srv.wait_log(f"listening on 127.0.0.1:{line_port}"), srv.stderr()
        browser = Browser()
        line = Line(line_port, "nc", srv)
        try:
            asyncio.run(asyncio.wait_for(
                converse(browser, srv, line, transport, query, shot, before_load), 90))
        finally:
            line.close()
            browser.close()


why = None
if CHROMIUM is None:
    why = "chromium is not installed"
elif websockets is None:
    why = "python3-websockets is not installed"

with skipping(why):

    @case("WebSocket: the page sends to a line client and shows its replies as text")
    def _():
        run_case("ws", "", "chat-screenshot.png")

    @case("server-sent events + POST (?transport=sse): both ways, markup as text")
    def _():
        run_case("sse", "?transport=sse", "chat-screenshot-sse.png")

    @case("long-polling + POST (?transport=poll): both ways, markup as text")
    def _():
        run_case("poll", "?transport=poll", "chat-screenshot-poll.png")

    @case("without WebSocket the page falls back to SSE by itself, without EventSource to polling")
    def _():
        run_case("sse", "", "chat-screenshot-fallback-sse.png", "delete window.WebSocket;")
        run_case("poll", "", "chat-screenshot-fallback-poll.png",
                 "delete window.WebSocket; delete window.EventSource;")

report()
