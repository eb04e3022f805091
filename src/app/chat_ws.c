/* chat_ws.c: eddy chat's WebSocket side (GET /ws).
 *
 * Each text message a client sends is one JSON message {"name", "text"};
 * a refused one is answered {"error": why} on the same connection, which
 * stays open. Every message of the room comes as one text frame: the hub
 * encodes it once (eddy_ws_encode, a complete server frame in a shared
 * block) and the same block is queued on every connection, no copy. A
 * connection more than CHAT_MAX_BACKLOG behind is dropped; a silent one is
 * pinged, and closed if it does not answer. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "app/chat.h"
#include "app/log.h"

/* Past this a message cannot be a valid one (a 1000-byte text, escaped):
 * it is refused with 1009 before it is even read whole. */
#define CHAT_WS_MAX_MESSAGE 16384
#define CHAT_WS_PING_NS (30 * (int64_t)1000000000)

struct chat_ws {
  chat_link link;
  chat *chat;
  eddy_ws *ws;
  eddy_comet_sub *sub;
};

static int encode_ws(const eddy_comet_msg *m, eddy_buf *out, void *arg) {
  (void)arg;
  return eddy_ws_encode(out, EDDY_WS_TEXT, m->data, m->len, NULL);
}

/* A frame of the room for this connection: queued as it is. */
static void ws_send(eddy_comet_sub *sub, void *block, size_t len, void *arg) {
  chat_ws *cw = arg;
  (void)sub;
  if (eddy_ws_send_frame_owned(cw->ws, block, len, eddy_comet_block_unref) ==
          0 &&
      eddy_ws_buffered(cw->ws) > CHAT_MAX_BACKLOG) {
    app_log(LOG_INFO, "chat: a WebSocket client cannot keep up, disconnected");
    eddy_ws_abort(cw->ws);
  }
}

static void ws_sub_gone(eddy_comet_sub *sub, void *arg) {
  chat_ws *cw = arg;
  (void)sub;
  cw->sub = NULL;
}

static void ws_error(chat_ws *cw, const char *why) {
  char *json = chat_error_json(why);
  if (json)
    (void)eddy_ws_send_text(cw->ws, json, strlen(json));
  free(json);
}

static void ws_message(eddy_ws *ws, int opcode, const char *data, size_t len,
                       void *arg) {
  chat_ws *cw = arg;
  char err[256];
  int e;
  (void)ws;
  if (opcode != EDDY_WS_TEXT) {
    ws_error(cw, "a message is JSON text, not binary");
    return;
  }
  e = chat_post_json(cw->chat, cw, data, len, err, sizeof err);
  if (e == 1)
    ws_error(cw, err);
  else if (e != 0)
    ws_error(cw, "the server is out of memory");
}

static void ws_close(eddy_ws *ws, int code, const char *reason, int status,
                     void *arg) {
  chat_ws *cw = arg;
  chat *c = cw->chat;
  (void)ws, (void)code, (void)reason;
  app_server_log_close(&c->srv, "a WebSocket client", status, reason);
  if (cw->sub)
    eddy_comet_unsubscribe(cw->sub);
  link_unlink(&c->ws_clients, &cw->link);
  free(cw);
  app_server_closed_one(&c->srv);
}

static void serve_ws(eddy_http_exchange *x, void *arg) {
  static const eddy_ws_callbacks cb = {.message = ws_message,
                                       .close = ws_close};
  static const eddy_comet_sub_callbacks subcb = {.send = ws_send,
                                                 .gone = ws_sub_gone};
  eddy_ws_options o = {.max_message = CHAT_WS_MAX_MESSAGE,
                       .ping_interval_ns = CHAT_WS_PING_NS};
  chat *c = arg;
  chat_ws *cw = calloc(1, sizeof *cw);
  if (cw == NULL) {
    (void)eddy_http_respond_status(x, 503);
    return;
  }
  cw->chat = c;
  /* The upgrade takes the connection from the HTTP server, which counts
   * it closed: from here the WebSocket counts it. */
  c->srv.open++;
  if (eddy_ws_accept(x, &o, &cb, cw, &cw->ws) != 0) {
    free(cw); /* refused (answered) or gone: x has ended */
    app_server_closed_one(&c->srv);
    return;
  }
  link_push(&c->ws_clients, &cw->link);
  /* A turn's messages leave in one write (see eddy_stream_set_coalesce). */
  (void)eddy_stream_set_coalesce(eddy_ws_stream(cw->ws), 1);
  if (eddy_comet_subscribe(c->hub, CHAT_TOPIC, c->fmt_ws, &subcb, cw,
                           &cw->sub) != 0)
    (void)eddy_ws_close(cw->ws, EDDY_WS_INTERNAL, "out of memory");
}

int chat_ws_init(chat *c) {
  int e = eddy_comet_format_add(c->hub, "websocket", encode_ws, NULL);
  if (e < 0)
    return e;
  c->fmt_ws = e;
  return eddy_http_route(c->http, "GET", "/ws", serve_ws, c);
}

void chat_ws_stop(chat *c) {
  for (chat_link *l = c->ws_clients, *next; l; l = next) {
    next = l->next;
    (void)eddy_ws_close(((chat_ws *)l)->ws, EDDY_WS_GOING_AWAY,
                        "the server is stopping");
  }
}
