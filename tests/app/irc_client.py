"""A raw-socket IRC client for the tests: it sends lines exactly as given
and reads the server's messages one at a time, each wait bounded by a
deadline. Nothing here is clever on purpose: the tests must see what the
server sends, byte for byte, and be able to send anything at all.

    c = Client(port)
    c.register("alice")                   # NICK, USER, up to the MOTD's end
    c.send("JOIN #room")
    m = c.expect(lambda m: m.command == "366")
    c.expect("PRIVMSG", timeout=2)         # a command or numeric as text
    msgs = c.sync()                        # PING/PONG round trip: what came before

A failed expectation raises AssertionError naming what was awaited and the
last lines read, so that a failing case says what the server did.
"""
import collections
import re
import socket
import time

TIME_TAG = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def unescape_tag(v):
    out, i = [], 0
    table = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
    while i < len(v):
        if v[i] == "\\" and i + 1 < len(v):
            out.append(table.get(v[i + 1], v[i + 1]))
            i += 2
        elif v[i] == "\\":
            i += 1
        else:
            out.append(v[i])
            i += 1
    return "".join(out)


class Msg:
    """One message: tags (dict), source, nick (of the source), command
    (upper case), params (the trailing one last, without its ':')."""

    def __init__(self, raw):
        self.raw = raw
        self.tags = {}
        self.source = ""
        rest = raw
        if rest.startswith("@"):
            tags, _, rest = rest[1:].partition(" ")
            for t in tags.split(";"):
                k, _, v = t.partition("=")
                if k:
                    self.tags[k] = unescape_tag(v)
            rest = rest.lstrip(" ")
        if rest.startswith(":"):
            self.source, _, rest = rest[1:].partition(" ")
            rest = rest.lstrip(" ")
        self.nick = re.split(r"[!@]", self.source, 1)[0]
        self.user = ""
        self.host = ""
        if "@" in self.source:
            self.host = self.source.split("@", 1)[1]
        if "!" in self.source:
            self.user = self.source.split("!", 1)[1].split("@", 1)[0]
        head, sep, trailing = rest.partition(" :")
        if rest.startswith(":"):  # no command: malformed, kept as it came
            head, sep, trailing = "", " :", rest[1:]
        words = head.split()
        self.command = words[0].upper() if words else ""
        self.params = words[1:] + ([trailing] if sep else [])

    def param(self, i, default=""):
        return self.params[i] if -len(self.params) <= i < len(self.params) else default

    @property
    def last(self):
        """The last parameter (the text of a message, a numeric's words)."""
        return self.params[-1] if self.params else ""

    def __repr__(self):
        return repr(self.raw)


def as_pred(what):
    """A predicate from a command or numeric ("001", "PRIVMSG"), a list of
    them (any), or a function of a Msg."""
    if callable(what):
        return what
    if isinstance(what, str):
        return lambda m: m.command == what.upper()
    cmds = {w.upper() for w in what}
    return lambda m: m.command in cmds


class Closed(AssertionError):
    pass


class Client:
    """One connection. pong: answer the server's PINGs as they are read (a
    client that must stay silent sets it False)."""

    _tokens = 0

    def __init__(self, port, host="127.0.0.1", ssl_context=None, server_hostname=None,
                 timeout=5.0, pong=True, sock=None):
        if sock is None:
            sock = socket.create_connection((host, port), timeout=timeout)
            if ssl_context is not None:
                sock = ssl_context.wrap_socket(sock, server_hostname=server_hostname or host)
        self.sock = sock
        self.timeout = timeout
        self.pong = pong
        self.buf = b""
        self.eof = False
        self.history = collections.deque(maxlen=25)  # the last lines read
        self.nick = None
        self.pings = 0  # PINGs from the server seen

    # ---- sending ----

    def send(self, *lines):
        """Sends each line with CR LF after it (str or bytes)."""
        data = b"".join((ln.encode() if isinstance(ln, str) else ln) + b"\r\n" for ln in lines)
        self.sock.sendall(data)

    def send_raw(self, data):
        self.sock.sendall(data)

    # ---- reading ----

    def _line(self, deadline):
        """The next line (bytes, without its end), None at EOF; raises
        socket.timeout at the deadline."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 1:]
                return line[:-1] if line.endswith(b"\r") else line
            if self.eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("deadline")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                self.eof = True
                if self.buf:  # a last line without its end
                    line, self.buf = self.buf, b""
                    return line
                return None
            self.buf += data

    def next(self, deadline):
        """The next message, None at EOF; socket.timeout at the deadline."""
        while True:
            line = self._line(deadline)
            if line is None:
                return None
            if not line.strip():
                continue
            m = Msg(line.decode("utf-8", "replace"))
            self.history.append(m.raw)
            if m.command == "PING":
                self.pings += 1
                if self.pong:
                    try:
                        self.send("PONG :" + m.last)
                    except OSError:
                        pass
            return m

    def _fail(self, what, why):
        seen = "\n    ".join(self.history) or "(nothing)"
        raise AssertionError(f"{self.nick or 'client'}: {why} while waiting for {what}; "
                             f"last lines read:\n    {seen}")

    def expect(self, what, timeout=None, desc=None):
        """Reads until a message matches `what` (see as_pred) and returns it;
        the messages before it are read and dropped."""
        pred = as_pred(what)
        desc = desc or (what if isinstance(what, str) else "a matching message")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            try:
                m = self.next(deadline)
            except socket.timeout:
                self._fail(desc, f"no match in {timeout or self.timeout} s")
            if m is None:
                self._fail(desc, "connection closed")
            if pred(m):
                return m

    def collect(self, until, timeout=None, desc=None):
        """The messages read up to and including the first matching `until`."""
        pred = as_pred(until)
        desc = desc or (until if isinstance(until, str) else "the end")
        out = []
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            try:
                m = self.next(deadline)
            except socket.timeout:
                self._fail(desc, f"no match in {timeout or self.timeout} s")
            if m is None:
                self._fail(desc, "connection closed")
            out.append(m)
            if pred(m):
                return out

    def sync(self, timeout=None):
        """A PING with a fresh token and everything read before its PONG:
        what the server sent in answer to the lines before it (it answers
        a client's lines in order)."""
        Client._tokens += 1
        tok = f"sync{Client._tokens}"
        self.send("PING :" + tok)
        msgs = self.collect(lambda m: m.command == "PONG" and m.last == tok, timeout,
                            desc=f"PONG {tok}")
        return msgs[:-1]

    def expect_closed(self, timeout=None):
        """Reads until the server closes; returns the messages read."""
        out = []
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            try:
                m = self.next(deadline)
            except socket.timeout:
                self._fail("the connection's end", f"still open after {timeout or self.timeout} s")
            except OSError:
                return out
            if m is None:
                return out
            out.append(m)

    # ---- registration ----

    def register(self, nick, user="u", real="Real Name", password=None, caps=None):
        """PASS (if given), CAP LS 302 / REQ / END (if caps is a list), NICK
        and USER; returns the messages read up to the end of the MOTD (376)
        or its absence (422)."""
        self.nick = nick
        if password is not None:
            self.send("PASS " + password)
        if caps is not None:
            self.send("CAP LS 302")
        self.send("NICK " + nick, f"USER {user} 0 * :{real}")
        if caps:
            self.send("CAP REQ :" + " ".join(caps))
            self.expect(lambda m: m.command == "CAP" and m.param(1) in ("ACK", "NAK"))
        if caps is not None:
            self.send("CAP END")
        return self.collect(["376", "422"], desc="the end of registration (376 or 422)")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def isupport(msgs):
    """The ISUPPORT tokens of the 005 messages among msgs: {name: value}
    (value None for a token without '=')."""
    out = {}
    for m in msgs:
        if m.command == "005":
            for tok in m.params[1:-1]:
                k, eq, v = tok.partition("=")
                out[k] = v if eq else None
    return out


def names_of(msgs, channel=None):
    """The names listed by the 353 messages among msgs (with their prefixes)."""
    out = []
    for m in msgs:
        if m.command == "353" and (channel is None or m.param(-2).lower() == channel.lower()):
            out += m.last.split()
    return out


class Swarm:
    """Many connections served by one selector (no thread each): lines to
    send are queued and written as the sockets take them, lines read are
    handed to a callback. PINGs from the server are answered."""

    def __init__(self):
        import selectors
        self._selectors = selectors
        self.sel = selectors.DefaultSelector()
        self.socks = []
        self.inbuf = []
        self.outbuf = []
        self.eof = []

    def __len__(self):
        return len(self.socks)

    def connect(self, port, host="127.0.0.1", rcvbuf=None):
        """Adds one connection; returns its index."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(10)
        s.connect((host, port))
        s.setblocking(False)
        i = len(self.socks)
        self.socks.append(s)
        self.inbuf.append(b"")
        self.outbuf.append(bytearray())
        self.eof.append(False)
        self.sel.register(s, self._selectors.EVENT_READ, i)
        return i

    def _events(self, i):
        ev = 0 if self.eof[i] else self._selectors.EVENT_READ
        if self.outbuf[i]:
            ev |= self._selectors.EVENT_WRITE
        return ev

    def _update(self, i):
        ev = self._events(i)
        try:
            if ev:
                self.sel.modify(self.socks[i], ev, i)
            else:
                self.sel.unregister(self.socks[i])
        except (KeyError, ValueError):
            pass

    def send(self, i, *lines):
        """Queues lines (CR LF added) on connection i."""
        for ln in lines:
            self.outbuf[i] += (ln.encode() if isinstance(ln, str) else ln) + b"\r\n"
        self._flush(i)

    def _flush(self, i):
        try:
            n = self.socks[i].send(self.outbuf[i])
            del self.outbuf[i][:n]
        except BlockingIOError:
            pass
        except OSError:
            self.outbuf[i].clear()
        self._update(i)

    def pending_out(self):
        return sum(len(b) for b in self.outbuf)

    def mute(self, i):
        """Stops reading connection i (its lines to send still go)."""
        self.eof[i] = True
        self._update(i)

    def run(self, on_msg, done, timeout, what="the swarm's goal"):
        """Reads and writes until done() is true; on_msg(i, Msg) for each
        message read (Msg None when connection i reached EOF). Raises
        AssertionError after timeout seconds."""
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{what}: not reached in {timeout} s")
            for key, ev in self.sel.select(min(left, 0.5)):
                i = key.data
                if ev & self._selectors.EVENT_WRITE:
                    self._flush(i)
                if ev & self._selectors.EVENT_READ:
                    try:
                        data = self.socks[i].recv(262144)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        self.eof[i] = True
                        self._update(i)
                        on_msg(i, None)
                        continue
                    buf = self.inbuf[i] + data
                    *lines, self.inbuf[i] = buf.split(b"\n")
                    for line in lines:
                        line = line.rstrip(b"\r")
                        if not line:
                            continue
                        m = Msg(line.decode("utf-8", "replace"))
                        if m.command == "PING":
                            self.send(i, "PONG :" + m.last)
                        on_msg(i, m)

    def close(self):
        for s in self.socks:
            try:
                self.sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()
        self.sel.close()


def pump(clients, until, timeout, what="the end"):
    """Reads whichever of the clients has something (each answering the
    server's PINGs) and calls until(client, msg) for each message (msg None
    when that client's connection ended; a closed client is read no more),
    and until(None, None) whenever nothing came for a moment, until it
    returns true. Raises AssertionError after timeout seconds."""
    import selectors
    deadline = time.monotonic() + timeout
    live = list(clients)
    with selectors.DefaultSelector() as sel:
        for c in live:
            sel.register(c.sock, selectors.EVENT_READ, c)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{what}: not reached in {timeout} s")
            # Lines already buffered first, then whatever the sockets have.
            ready = [c for c in live if b"\n" in c.buf]
            if not ready:
                ready = [k.data for k, _ in sel.select(min(left, 0.1))]
            if not ready and until(None, None):
                return
            for c in ready:
                try:
                    m = c.next(time.monotonic() + 0.1)
                except socket.timeout:
                    continue
                except OSError:
                    m = None
                if m is None:
                    live.remove(c)
                    sel.unregister(c.sock)
                if until(c, m):
                    return
