/* conn.c: a WebSocket connection over an eddy_stream (RFC 6455 sections
 * 5 to 7): reading frames into messages, sending, pings, the close
 * handshake and its timers.
 *
 * Decisions:
 * - A message is gathered in one eddy_buf (unmasked as it is copied in;
 *   masked bytes can only be read once), then delivered whole. A text
 *   message is validated as its bytes arrive, so bad UTF-8 fails the
 *   connection at the fragment that holds it, not at the message's end.
 *   A compressed message is inflated at its end, into a second buffer
 *   bounded by max_message, then validated.
 * - Buffers larger than 64 KiB are released after their message, so an
 *   idle connection keeps only small blocks.
 * - One owned timer serves the keep-alive ping, the pong deadline and the
 *   close reply's deadline: it is moved lazily, as stream.c's idle timer
 *   is, so reading bytes costs no timer operation.
 * - The first cause of the end wins (settle): a close frame's code, our
 *   failure's code, a timeout. The stream's close callback then reports
 *   it and frees the connection, so the connection's memory lives exactly
 *   as long as its stream's, and closing from any callback is safe.
 * - A connection that fails (a protocol error, too big a message) sends
 *   its close frame and closes the stream without waiting for the reply,
 *   as RFC 6455 section 7.1.7 allows. */
#include <errno.h>
#include <openssl/rand.h>
#include <string.h>
#include <zlib.h>

#include "core/loop.h"
#include "proto/ws/ws.h"
#include "sys/alloc.h"

enum { S_CONNECTING, S_OPEN, S_CLOSING, S_DONE };

#define KEEP_BLOCK 65536
#define DEFAULT_PONG_TIMEOUT 20000000000LL
#define DEFAULT_CLOSE_TIMEOUT 5000000000LL
#define DEFAULT_DEFLATE_MIN 64

struct eddy_ws {
  eddy_loop *loop;
  eddy_stream *s;
  eddy_ws_callbacks cb;
  void *arg;
  eddy_ws_options opt; /* pointers in it are not kept past setup */
  int server;
  int state;
  eddy_ws_parser p;
  eddy_ws_utf8 utf8;
  int msg_op;
  int msg_z;
  int frag_out; /* a fragmented message is being sent */
  eddy_buf msg; /* the message being received */
  eddy_buf tmp; /* the inflated message */
  eddy_buf out; /* a frame being built (masked, compressed) */
  char ctl[EDDY_WS_MAX_CONTROL + 1];
  size_t ctl_len;
  eddy__ws_pmd pmd;
  eddy__ws_zlib zin, zout;
  char *subprotocol;
  eddy__timer timer;
  int64_t last_rx, ping_at, close_at, last_pong;
  int ping_out;
  int settled, reported;
  int code, status;
  char reason[128];
  uint8_t rnd[64];
  unsigned rnd_left;
  eddy_buf early;  /* frames that came with the handshake request */
  eddy_call *call; /* reads them from the loop */
  void *client;    /* handshake.c's state while a client connects */
};

static void settle(eddy_ws *ws, int code, int status, const char *reason,
                   size_t len) {
  if (ws->settled)
    return;
  ws->settled = 1;
  ws->code = code;
  ws->status = status;
  if (len >= sizeof ws->reason)
    len = sizeof ws->reason - 1;
  memcpy(ws->reason, reason, len);
  ws->reason[len] = '\0';
}

static void settle_str(eddy_ws *ws, int code, int status, const char *reason) {
  settle(ws, code, status, reason, strlen(reason));
}

/* ---- Sending --------------------------------------------------------------- */

static int next_mask(eddy_ws *ws, uint8_t key[4]) {
  if (ws->rnd_left < 4) {
    if (RAND_bytes(ws->rnd, sizeof ws->rnd) != 1)
      return -EIO;
    ws->rnd_left = sizeof ws->rnd;
  }
  ws->rnd_left -= 4;
  memcpy(key, ws->rnd + ws->rnd_left, 4);
  return 0;
}

static void trim(eddy_buf *b) {
  if ((size_t)(b->end - b->start) > KEEP_BLOCK)
    eddy_buf_free(b);
  else
    eddy_buf_reset(b);
}

/* Sends one frame, whatever the state. */
static int send_frame(eddy_ws *ws, int fin, int opcode, const void *data,
                      size_t len, int compress) {
  uint8_t key[4];
  int r;
  if (ws->server && !compress) {
    char head[EDDY_WS_MAX_HEADER];
    struct iovec iov[2];
    iov[0].iov_base = head;
    iov[0].iov_len = eddy_ws_frame_header(head, fin, opcode, 0, len, NULL);
    iov[1].iov_base = (void *)(uintptr_t)data;
    iov[1].iov_len = len;
    return eddy_stream_writev(ws->s, iov, len ? 2 : 1);
  }
  if (!ws->server && (r = next_mask(ws, key)) < 0)
    return r;
  eddy_buf_reset(&ws->out);
  r = eddy__ws_frame(&ws->out, fin, opcode, data, len,
                     compress ? &ws->zout : NULL, ws->server ? NULL : key);
  if (r == 0)
    r = eddy_stream_write(ws->s, eddy_buf_data(&ws->out),
                          eddy_buf_len(&ws->out));
  trim(&ws->out);
  return r;
}

static int send_close_frame(eddy_ws *ws, int code, const char *reason,
                            size_t len) {
  char body[2 + EDDY_WS_MAX_REASON];
  if (code == 0 || code == EDDY_WS_NO_STATUS)
    return send_frame(ws, 1, EDDY_WS_CLOSE, NULL, 0, 0);
  if (len > EDDY_WS_MAX_REASON)
    len = EDDY_WS_MAX_REASON;
  body[0] = (char)(code >> 8);
  body[1] = (char)code;
  if (len)
    memcpy(body + 2, reason, len);
  return send_frame(ws, 1, EDDY_WS_CLOSE, body, 2 + len, 0);
}

/* Fails the connection: our close frame, then the stream's close. */
static void fail(eddy_ws *ws, int code, int status, const char *reason) {
  if (ws->state == S_DONE)
    return;
  settle_str(ws, code, status, reason);
  if (ws->state == S_OPEN)
    send_close_frame(ws, code, reason, strlen(reason));
  ws->state = S_DONE;
  eddy__timer_stop(&ws->timer);
  eddy_stream_close(ws->s);
}

/* Ends at once, discarding what was queued. */
static void drop(eddy_ws *ws, int code, int status, const char *reason) {
  if (ws->state == S_DONE)
    return;
  settle_str(ws, code, status, reason);
  ws->state = S_DONE;
  eddy__timer_stop(&ws->timer);
  eddy_stream_abort(ws->s);
}

/* ---- Timers ------------------------------------------------------------------ */

static void arm(eddy_ws *ws) {
  int64_t now = eddy_loop_now(ws->loop), at;
  if (ws->state == S_CLOSING)
    at = ws->close_at;
  else if (ws->state == S_OPEN && ws->opt.ping_interval_ns > 0)
    at = ws->ping_out ? ws->ping_at + ws->opt.pong_timeout_ns
                      : ws->last_rx + ws->opt.ping_interval_ns;
  else
    return;
  if (!eddy__timer_active(&ws->timer) || eddy__timer_deadline(&ws->timer) != at)
    eddy__timer_start(&ws->timer, at - now);
}

static void on_timer(eddy__timer *t, void *arg) {
  eddy_ws *ws = arg;
  int64_t now = eddy_loop_now(ws->loop);
  (void)t;
  if (ws->state == S_CLOSING) {
    if (now >= ws->close_at) {
      ws->settled = 0; /* our close's code stays; the cause is the wait */
      settle(ws, ws->code, -ETIMEDOUT, "no close reply from the peer", 28);
      drop(ws, ws->code, -ETIMEDOUT, "");
      return;
    }
  } else if (ws->state == S_OPEN && ws->opt.ping_interval_ns > 0) {
    if (ws->ping_out && ws->last_rx > ws->ping_at)
      ws->ping_out = 0; /* the peer spoke: it is alive */
    if (ws->ping_out && now >= ws->ping_at + ws->opt.pong_timeout_ns) {
      drop(ws, EDDY_WS_ABNORMAL, -ETIMEDOUT, "no pong from the peer");
      return;
    }
    if (!ws->ping_out && now >= ws->last_rx + ws->opt.ping_interval_ns) {
      if (send_frame(ws, 1, EDDY_WS_PING, "ka", 2, 0) < 0)
        return;
      ws->ping_out = 1;
      ws->ping_at = now;
    }
  }
  arm(ws);
}

/* ---- Receiving ------------------------------------------------------------- */

static void deliver(eddy_ws *ws) {
  eddy_buf *b = &ws->msg;
  int r;
  if (ws->msg_z) {
    eddy_buf_reset(&ws->tmp);
    r = eddy__ws_inflate(&ws->zin, eddy_buf_data(&ws->msg),
                         eddy_buf_len(&ws->msg), ws->opt.max_message, &ws->tmp);
    if (r == -EMSGSIZE) {
      fail(ws, EDDY_WS_TOO_BIG, -EMSGSIZE, "message too big");
      return;
    }
    if (r == EDDY_EPARSE) {
      fail(ws, EDDY_WS_INVALID_DATA, EDDY_EPARSE, "invalid compressed data");
      return;
    }
    if (r < 0) {
      fail(ws, EDDY_WS_INTERNAL, r, "out of memory");
      return;
    }
    b = &ws->tmp;
    if (ws->msg_op == EDDY_WS_TEXT &&
        eddy_ws_utf8_valid(eddy_buf_data(b), eddy_buf_len(b)) < 0) {
      fail(ws, EDDY_WS_INVALID_DATA, EDDY_EPARSE, "invalid UTF-8");
      return;
    }
  } else if (ws->msg_op == EDDY_WS_TEXT && eddy_ws_utf8_end(&ws->utf8) < 0) {
    fail(ws, EDDY_WS_INVALID_DATA, EDDY_EPARSE, "invalid UTF-8");
    return;
  }
  if (eddy_buf_append(b, "", 1) < 0) {
    fail(ws, EDDY_WS_INTERNAL, -ENOMEM, "out of memory");
    return;
  }
  if (ws->cb.message)
    ws->cb.message(ws, ws->msg_op, eddy_buf_data(b), eddy_buf_len(b) - 1,
                   ws->arg);
  trim(&ws->msg);
  trim(&ws->tmp);
}

static void on_close_frame(eddy_ws *ws) {
  int code = EDDY_WS_NO_STATUS;
  const char *reason = "";
  size_t rlen = 0;
  if (ws->ctl_len == 1) {
    fail(ws, EDDY_WS_PROTOCOL_ERROR, EDDY_EPARSE, "close frame of one byte");
    return;
  }
  if (ws->ctl_len >= 2) {
    code = (uint8_t)ws->ctl[0] << 8 | (uint8_t)ws->ctl[1];
    reason = ws->ctl + 2;
    rlen = ws->ctl_len - 2;
    if (!eddy_ws_close_code_valid(code)) {
      fail(ws, EDDY_WS_PROTOCOL_ERROR, EDDY_EPARSE, "invalid close code");
      return;
    }
    if (eddy_ws_utf8_valid(reason, rlen) < 0) {
      fail(ws, EDDY_WS_INVALID_DATA, EDDY_EPARSE,
           "invalid UTF-8 in the close reason");
      return;
    }
  }
  if (ws->state == S_CLOSING)
    ws->settled = 0; /* the reply: its code is the handshake's */
  settle(ws, code, 0, reason, rlen);
  if (ws->state == S_OPEN)
    send_close_frame(ws, code, reason, rlen);
  ws->state = S_DONE;
  eddy__timer_stop(&ws->timer);
  eddy_stream_close(ws->s);
}

static void on_control(eddy_ws *ws) {
  const char *d = ws->ctl;
  size_t n = ws->ctl_len;
  ws->ctl[n] = '\0';
  switch (ws->p.opcode) {
  case EDDY_WS_PING:
    if (ws->state == S_OPEN)
      send_frame(ws, 1, EDDY_WS_PONG, d, n, 0);
    if (ws->cb.ping && ws->state == S_OPEN)
      ws->cb.ping(ws, d, n, ws->arg);
    break;
  case EDDY_WS_PONG:
    ws->last_pong = eddy_loop_now(ws->loop);
    ws->ping_out = 0;
    if (ws->cb.pong && ws->state == S_OPEN)
      ws->cb.pong(ws, d, n, ws->arg);
    break;
  default:
    on_close_frame(ws);
  }
}

static void on_header(eddy_ws *ws) {
  eddy_ws_parser *p = &ws->p;
  if (p->opcode >= EDDY_WS_CLOSE) {
    ws->ctl_len = 0;
    return;
  }
  if (p->opcode != EDDY_WS_CONT) {
    ws->msg_op = p->opcode;
    ws->msg_z = p->rsv1;
    eddy_buf_reset(&ws->msg);
    eddy_ws_utf8_init(&ws->utf8);
  }
  if (ws->state == S_OPEN &&
      p->length > ws->opt.max_message - eddy_buf_len(&ws->msg))
    fail(ws, EDDY_WS_TOO_BIG, -EMSGSIZE, "message too big");
}

static void on_payload(eddy_ws *ws, const char *data, size_t n) {
  eddy_ws_parser *p = &ws->p;
  uint64_t at = p->offset - n;
  char *space;
  size_t room;
  if (p->opcode >= EDDY_WS_CLOSE) {
    eddy_ws_unmask(ws->ctl + ws->ctl_len, data, n, p->masked ? p->mask : NULL,
                   at);
    ws->ctl_len += n;
    return;
  }
  if (ws->state != S_OPEN)
    return; /* closing: messages are dropped */
  if (eddy_buf_reserve(&ws->msg, n, &space, &room) < 0) {
    fail(ws, EDDY_WS_INTERNAL, -ENOMEM, "out of memory");
    return;
  }
  eddy_ws_unmask(space, data, n, p->masked ? p->mask : NULL, at);
  eddy_buf_commit(&ws->msg, n);
  if (ws->msg_op == EDDY_WS_TEXT && !ws->msg_z &&
      eddy_ws_utf8_feed(&ws->utf8, space, n) < 0)
    fail(ws, EDDY_WS_INVALID_DATA, EDDY_EPARSE, "invalid UTF-8");
}

static void process(eddy_ws *ws, const char *data, size_t len) {
  size_t off = 0;
  while (ws->state != S_DONE) {
    const char *span = NULL;
    size_t used, n = 0;
    int r = eddy_ws_parse(&ws->p, data + off, len - off, &used, &span, &n);
    off += used;
    if (r == 0)
      return;
    if (r < 0) {
      int status = ws->p.code == EDDY_WS_TOO_BIG ? -EMSGSIZE : EDDY_EPARSE;
      {
        fail(ws, ws->p.code, status, ws->p.reason);
        return;
      }
    }
    if (r == EDDY_WS_HEADER)
      on_header(ws);
    else if (r == EDDY_WS_DATA)
      on_payload(ws, span, n);
    else if (ws->p.opcode >= EDDY_WS_CLOSE)
      on_control(ws);
    else if (ws->p.fin && ws->state == S_OPEN)
      deliver(ws);
  }
}

/* ---- The stream's callbacks --------------------------------------------------- */

static void on_data(eddy_stream *s, const char *data, size_t len, void *arg) {
  eddy_ws *ws = arg;
  (void)s;
  ws->last_rx = eddy_loop_now(ws->loop);
  process(ws, data, len);
}

static void on_eof(eddy_stream *s, void *arg) {
  eddy_ws *ws = arg;
  settle_str(ws, EDDY_WS_ABNORMAL, -ECONNRESET,
             "connection closed without a close frame");
  ws->state = S_DONE;
  eddy__timer_stop(&ws->timer);
  eddy_stream_close(s);
}

static void on_drain(eddy_stream *s, void *arg) {
  eddy_ws *ws = arg;
  (void)s;
  if (ws->cb.drain && ws->state != S_DONE)
    ws->cb.drain(ws, ws->arg);
}

static void on_stream_close(eddy_stream *s, int status, const char *detail,
                            void *arg) {
  eddy_ws *ws = arg;
  (void)s;
  if (!ws->settled)
    settle_str(ws, EDDY_WS_ABNORMAL, status ? status : -ECONNRESET, detail);
  else if (ws->status == 0 && status < 0 && ws->code == EDDY_WS_ABNORMAL)
    ws->status = status;
  ws->state = S_DONE;
  ws->s = NULL;
  if (ws->cb.close)
    ws->cb.close(ws, ws->code, ws->reason, ws->status, ws->arg);
  eddy__ws_free(ws);
}

static const eddy_stream_callbacks stream_cb = {on_data, on_eof, on_drain,
                                                on_stream_close};

/* ---- Setting up ------------------------------------------------------------------ */

int eddy__ws_new(eddy_loop *loop, int server, const eddy_ws_options *opt,
                 const eddy_ws_callbacks *cb, void *arg, eddy_ws **out) {
  eddy_ws *ws = eddy__calloc(1, sizeof *ws);
  if (ws == NULL)
    return -ENOMEM;
  ws->loop = loop;
  ws->server = server;
  if (opt)
    ws->opt = *opt;
  if (ws->opt.max_message == 0)
    ws->opt.max_message = EDDY_WS_DEFAULT_MAX_MESSAGE;
  if (ws->opt.pong_timeout_ns <= 0)
    ws->opt.pong_timeout_ns = DEFAULT_PONG_TIMEOUT;
  if (ws->opt.close_timeout_ns <= 0)
    ws->opt.close_timeout_ns = DEFAULT_CLOSE_TIMEOUT;
  if (ws->opt.deflate_min == 0)
    ws->opt.deflate_min = DEFAULT_DEFLATE_MIN;
  ws->opt.subprotocols = NULL;
  ws->opt.nsubprotocols = 0;
  ws->opt.host = ws->opt.path = ws->opt.origin = NULL;
  if (cb)
    ws->cb = *cb;
  ws->arg = arg;
  ws->state = S_CONNECTING;
  ws->last_pong = -1;
  eddy_buf_init(&ws->msg, 0);
  eddy_buf_init(&ws->tmp, 0);
  eddy_buf_init(&ws->out, 0);
  eddy_buf_init(&ws->early, 0);
  eddy_ws_parser_init(&ws->p,
                      server ? EDDY_WS_PARSE_SERVER : EDDY_WS_PARSE_CLIENT, 0);
  eddy__timer_init(loop, &ws->timer, on_timer, ws);
  *out = ws;
  return 0;
}

void eddy__ws_free(eddy_ws *ws) {
  eddy__timer_stop(&ws->timer);
  if (ws->call)
    eddy_call_close(ws->call);
  eddy_buf_free(&ws->early);
  eddy_buf_free(&ws->msg);
  eddy_buf_free(&ws->tmp);
  eddy_buf_free(&ws->out);
  eddy__ws_zlib_free(&ws->zin, 0);
  eddy__ws_zlib_free(&ws->zout, 1);
  if (ws->pmd.on)
    eddy__ws_zcache_release();
  eddy__free(ws->subprotocol);
  eddy__free(ws);
}

int eddy__ws_set_negotiated(eddy_ws *ws, const eddy__ws_pmd *pmd,
                            const char *subprotocol, size_t len) {
  if (subprotocol) {
    ws->subprotocol = eddy__malloc(len + 1);
    if (ws->subprotocol == NULL)
      return -ENOMEM;
    memcpy(ws->subprotocol, subprotocol, len);
    ws->subprotocol[len] = '\0';
  }
  if (pmd && pmd->on) {
    eddy__ws_zcache_hold();
    ws->pmd = *pmd;
    ws->p.flags |= EDDY_WS_PARSE_RSV1;
    ws->zout.level = Z_DEFAULT_COMPRESSION;
    ws->zout.bits = ws->server ? pmd->server_bits : pmd->client_bits;
    if (ws->zout.bits < 9)
      ws->zout.bits = 9;
    ws->zout.takeover = !(ws->server ? pmd->server_no_takeover
                                     : pmd->client_no_takeover);
    ws->zin.bits = 15;
    ws->zin.takeover = !(ws->server ? pmd->client_no_takeover
                                    : pmd->server_no_takeover);
  }
  return 0;
}

const eddy_ws_options *eddy__ws_options(const eddy_ws *ws) {
  return &ws->opt;
}

void eddy__ws_start(eddy_ws *ws, eddy_stream *s) {
  ws->s = s;
  ws->state = S_OPEN;
  ws->last_rx = eddy_loop_now(ws->loop);
  eddy_stream_set_callbacks(s, &stream_cb, ws);
  arm(ws);
}

void eddy__ws_feed(eddy_ws *ws, const char *data, size_t len) {
  if (len)
    process(ws, data, len);
}

static void on_early(eddy_call *call, void *arg) {
  eddy_ws *ws = arg;
  (void)call;
  process(ws, eddy_buf_data(&ws->early), eddy_buf_len(&ws->early));
  eddy_buf_free(&ws->early);
}

int eddy__ws_feed_later(eddy_ws *ws, eddy_buf *early) {
  int r;
  if (eddy_buf_len(early) == 0)
    return 0;
  r = eddy_call_new(ws->loop, on_early, ws, &ws->call);
  if (r < 0)
    return r;
  ws->early = *early;
  eddy_buf_init(early, 0);
  return eddy_call_schedule(ws->call);
}

void eddy__ws_open_cb(eddy_ws *ws, int status, const char *detail) {
  if (ws->cb.open)
    ws->cb.open(ws, status, detail, ws->arg);
}

void *eddy__ws_client(const eddy_ws *ws) {
  return ws->client;
}

void eddy__ws_set_client(eddy_ws *ws, void *c) {
  ws->client = c;
}

/* ---- The program's calls ------------------------------------------------------ */

int eddy_ws_send(eddy_ws *ws, int opcode, const void *data, size_t len) {
  if (opcode != EDDY_WS_TEXT && opcode != EDDY_WS_BINARY)
    return -EINVAL;
  if (ws->state != S_OPEN)
    return EDDY_ECLOSED;
  if (ws->frag_out)
    return -EINVAL;
  return send_frame(ws, 1, opcode, data, len,
                    ws->pmd.on && len >= ws->opt.deflate_min);
}

int eddy_ws_send_text(eddy_ws *ws, const char *text, size_t len) {
  return eddy_ws_send(ws, EDDY_WS_TEXT, text, len);
}

int eddy_ws_send_binary(eddy_ws *ws, const void *data, size_t len) {
  return eddy_ws_send(ws, EDDY_WS_BINARY, data, len);
}

int eddy_ws_send_fragment(eddy_ws *ws, int opcode, const void *data, size_t len,
                          int fin) {
  int r;
  if (ws->state != S_OPEN)
    return EDDY_ECLOSED;
  if (opcode == EDDY_WS_CONT ? !ws->frag_out
                             : (ws->frag_out || (opcode != EDDY_WS_TEXT &&
                                                 opcode != EDDY_WS_BINARY)))
    return -EINVAL;
  r = send_frame(ws, fin, opcode, data, len, 0);
  if (r == 0)
    ws->frag_out = !fin;
  return r;
}

int eddy_ws_send_frame_owned(eddy_ws *ws, void *data, size_t len,
                             void (*free_fn)(void *)) {
  int r = 0;
  if (!ws->server)
    r = -EINVAL;
  else if (ws->state != S_OPEN || ws->frag_out)
    r = ws->frag_out ? -EINVAL : EDDY_ECLOSED;
  if (r < 0) {
    if (free_fn)
      free_fn(data);
    return r;
  }
  return eddy_stream_write_owned(ws->s, data, len, free_fn);
}

int eddy_ws_deflate(const eddy_ws *ws) {
  return ws->pmd.on;
}

int eddy_ws_deflate_ok(const eddy_ws *ws, const eddy_ws_compressor *z) {
  return ws->server && ws->pmd.on && ws->pmd.server_no_takeover &&
         eddy__ws_compressor_bits(z) <= ws->pmd.server_bits;
}

int eddy_ws_ping(eddy_ws *ws, const void *data, size_t len) {
  if (len > EDDY_WS_MAX_CONTROL)
    return -EINVAL;
  if (ws->state != S_OPEN)
    return EDDY_ECLOSED;
  return send_frame(ws, 1, EDDY_WS_PING, data, len, 0);
}

int64_t eddy_ws_last_pong(const eddy_ws *ws) {
  return ws->last_pong;
}

static int code_sendable(int code) {
  if (code == 0)
    return 1;
  if (code == EDDY_WS_NO_STATUS || code == EDDY_WS_ABNORMAL || code == 1015)
    return 0;
  return eddy_ws_close_code_valid(code);
}

int eddy_ws_close(eddy_ws *ws, int code, const char *reason) {
  size_t len = reason ? strlen(reason) : 0;
  if (!code_sendable(code) || len > EDDY_WS_MAX_REASON ||
      (code == 0 && len > 0) || eddy_ws_utf8_valid(reason, len) < 0)
    return -EINVAL;
  if (ws->state != S_OPEN)
    return EDDY_ECLOSED;
  ws->state = S_CLOSING;
  ws->code = code ? code : EDDY_WS_NO_STATUS;
  memcpy(ws->reason, reason ? reason : "", len + 1);
  send_close_frame(ws, code, reason, len);
  if (ws->state != S_CLOSING)
    return 0; /* the write failed: the stream is closing */
  ws->close_at = eddy_loop_now(ws->loop) + ws->opt.close_timeout_ns;
  arm(ws);
  return 0;
}

void eddy_ws_abort(eddy_ws *ws) {
  if (ws->state == S_CONNECTING) {
    if (ws->client)
      eddy__ws_client_abort(ws->client);
    return;
  }
  drop(ws, EDDY_WS_ABNORMAL, -ECONNABORTED, "aborted");
}

size_t eddy_ws_buffered(const eddy_ws *ws) {
  return ws->s ? eddy_stream_buffered(ws->s) : 0;
}

int eddy_ws_over_high(const eddy_ws *ws) {
  return ws->s ? eddy_stream_over_high(ws->s) : 0;
}

const char *eddy_ws_subprotocol(const eddy_ws *ws) {
  return ws->subprotocol;
}

eddy_stream *eddy_ws_stream(const eddy_ws *ws) {
  return ws->s;
}

eddy_loop *eddy_ws_loop(const eddy_ws *ws) {
  return ws->loop;
}

void eddy_ws_set_arg(eddy_ws *ws, void *arg) {
  ws->arg = arg;
}
