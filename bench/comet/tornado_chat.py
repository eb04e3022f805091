#!/usr/bin/python3
"""bench/comet/tornado_chat.py: the chat's web wire contract on Tornado, the
peer that `eddy chat` is measured against (see run.sh).

    tornado_chat.py PORT

One process, one IOLoop, listening on 127.0.0.1:PORT:
  GET /ws      upgrades to WebSocket; the server sends each message as one
               text frame holding its JSON; a text message from the client
               is taken as a message to post, as POST /send would
  GET /events  a server-sent events stream; each message is one event,
               "id: ID" and "data: JSON"
  POST /send   one message, a JSON object {"name": ..., "text": ...}
               (name at most 32 bytes, text at most 1000, both strings);
               answers 200 with the message as sent, 400 if it is invalid
Every web client receives the same object with "id" (an increasing
integer) and "time" (milliseconds since the epoch) added. The JSON of a
message is encoded once, and so is its SSE event; Tornado then frames it
per WebSocket client, which is how it sends a message to many.
"""

import json
import sys
import time

import tornado.httpserver
import tornado.ioloop
import tornado.iostream
import tornado.locks
import tornado.web
import tornado.websocket

MAX_NAME = 32
MAX_TEXT = 1000

ws_clients = set()
sse_clients = set()
last_id = 0


def make_message(body):
    """The message to broadcast from a client's JSON, or None if invalid."""
    global last_id
    try:
        msg = json.loads(body)
    except ValueError:
        return None
    if not isinstance(msg, dict):
        return None
    name, text = msg.get("name"), msg.get("text")
    if not isinstance(name, str) or not isinstance(text, str):
        return None
    if not name or len(name.encode()) > MAX_NAME or len(text.encode()) > MAX_TEXT:
        return None
    last_id += 1
    return {"name": name, "text": text, "id": last_id,
            "time": int(time.time() * 1000)}


def broadcast(msg):
    data = json.dumps(msg, separators=(",", ":"))
    event = ("id: %d\ndata: %s\n\n" % (msg["id"], data)).encode()
    for ws in list(ws_clients):
        try:
            ws.write_message(data)
        except tornado.websocket.WebSocketClosedError:
            ws_clients.discard(ws)
    for handler in list(sse_clients):
        try:
            handler.write(event)
            handler.flush()
        except tornado.iostream.StreamClosedError:
            sse_clients.discard(handler)
    return data


class WebSocket(tornado.websocket.WebSocketHandler):
    def open(self):
        ws_clients.add(self)

    def on_message(self, message):
        msg = make_message(message)
        if msg is not None:
            broadcast(msg)

    def on_close(self):
        ws_clients.discard(self)


class Events(tornado.web.RequestHandler):
    async def get(self):
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        sse_clients.add(self)
        self.flush()
        # Held open until the client goes away.
        self.closed = tornado.locks.Event()
        await self.closed.wait()

    def on_connection_close(self):
        sse_clients.discard(self)
        closed = getattr(self, "closed", None)
        if closed is not None:
            closed.set()


class Send(tornado.web.RequestHandler):
    def post(self):
        msg = make_message(self.request.body)
        if msg is None:
            self.set_status(400)
            self.finish("invalid message\n")
            return
        self.set_header("Content-Type", "application/json")
        self.finish(broadcast(msg))


def main():
    port = int(sys.argv[1])
    app = tornado.web.Application(
        [(r"/ws", WebSocket), (r"/events", Events), (r"/send", Send)])
    server = tornado.httpserver.HTTPServer(app)
    # eddy's listeners' default backlog (Tornado's own is 128).
    server.bind(port, address="127.0.0.1", backlog=511)
    server.start(1)
    tornado.ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
