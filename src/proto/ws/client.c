/* client.c: a WebSocket client's handshake (RFC 6455 section 4.1).
 *
 * While it connects, a client is a small state of its own beside its
 * eddy_ws: the connect request, then the stream with this file's
 * callbacks, the response bytes gathered so far, the accept key expected,
 * the subprotocols offered, and one owned timer for the whole handshake.
 * Every failure ends in one place: the stream's close callback (or the
 * connect callback before there is a stream), which reports the open
 * callback's status once and frees both. On success the stream is handed
 * to conn.c, and bytes that came after the 101 head are read as frames. */
#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "core/loop.h"
#include "proto/http/http.h"
#include "proto/ws/ws.h"
#include "sys/alloc.h"

#define MAX_RESPONSE 16384
#define DEFAULT_HANDSHAKE_TIMEOUT 30000000000LL

typedef struct client {
  eddy_ws *ws;
  eddy_connect *req;
  eddy_stream *s;
  eddy_buf text; /* the request, until sent */
  eddy_buf in;   /* the response so far */
  char accept[32];
  char *offered; /* the subprotocols offered, "a, b", or NULL */
  int deflate;
  eddy__timer timer;
  int status; /* the failure decided here, or 0 */
  char detail[160];
} client;

static void client_free(client *c) {
  eddy__timer_stop(&c->timer);
  eddy_buf_free(&c->text);
  eddy_buf_free(&c->in);
  eddy__free(c->offered);
  eddy__free(c);
}

/* Reports the failure and frees everything. */
static void finish_failed(client *c, int status, const char *detail) {
  eddy_ws *ws = c->ws;
  if (c->status) {
    status = c->status;
    detail = c->detail;
  }
  eddy__ws_set_client(ws, NULL);
  eddy__ws_open_cb(ws, status, detail);
  client_free(c);
  eddy__ws_free(ws);
}

/* Decides the failure and ends the attempt; reported from the loop. */
static void give_up(client *c, int status, const char *detail) {
  if (c->status == 0) {
    c->status = status;
    if (detail != c->detail)
      snprintf(c->detail, sizeof c->detail, "%s", detail);
  }
  eddy__timer_stop(&c->timer);
  if (c->req)
    eddy_connect_cancel(c->req);
  else if (c->s)
    eddy_stream_abort(c->s);
}

void eddy__ws_client_abort(void *arg) {
  give_up(arg, -ECANCELED, "cancelled");
}

static void on_timeout(eddy__timer *t, void *arg) {
  (void)t;
  give_up(arg, -ETIMEDOUT, "the handshake timed out");
}

/* ---- The response ------------------------------------------------------------ */

static int is_ows(char c) {
  return c == ' ' || c == '\t';
}

static int has_token(const eddy_http_response_head *r, const char *name,
                     const char *token) {
  for (size_t i = 0; i < r->nheaders; i++) {
    const eddy_http_header *h = &r->headers[i];
    size_t j = 0;
    if (!eddy__http_ieq(h->name, h->name_len, name))
      continue;
    while (j < h->value_len) {
      size_t s, e;
      while (j < h->value_len && (is_ows(h->value[j]) || h->value[j] == ','))
        j++;
      s = j;
      while (j < h->value_len && h->value[j] != ',')
        j++;
      e = j;
      while (e > s && is_ows(h->value[e - 1]))
        e--;
      if (e > s && eddy__http_ieq(h->value + s, e - s, token))
        return 1;
    }
  }
  return 0;
}

/* Whether the protocol p (n bytes) is one of "a, b". */
static int was_offered(const char *offered, const char *p, size_t n) {
  const char *s = offered;
  while (s && *s) {
    size_t len = strcspn(s, ",");
    if (len == n && memcmp(s, p, n) == 0)
      return 1;
    s += len;
    while (*s == ',' || *s == ' ')
      s++;
  }
  return 0;
}

typedef struct answer {
  int count;
  int bad;
  eddy__ws_pmd pmd;
} answer;

static int read_answer(const char *ext, size_t len,
                       const eddy__ws_ext_param *params, size_t n, void *arg) {
  answer *a = arg;
  if (!eddy__http_ieq(ext, len, "permessage-deflate") || a->count++ ||
      eddy__ws_pmd_params(params, n, &a->pmd) < 0 || a->pmd.client_bits < 9)
    a->bad = 1;
  return 0;
}

/* Checks the head: 0 with *pmd and *proto set, or -1 with c->detail. */
static int check_response(client *c, const eddy_http_response_head *r,
                          eddy__ws_pmd *pmd, const eddy_http_header **proto) {
  const eddy_http_header *acc, *ext;
  answer a;
  memset(&a, 0, sizeof a);
  memset(pmd, 0, sizeof *pmd);
  if (r->status != 101) {
    snprintf(c->detail, sizeof c->detail, "the server answered %d %.*s",
             r->status, (int)(r->reason_len > 80 ? 80 : r->reason_len),
             r->reason);
    return -1;
  }
  if (!has_token(r, "upgrade", "websocket") ||
      !has_token(r, "connection", "upgrade")) {
    snprintf(c->detail, sizeof c->detail,
             "101 without Upgrade: websocket and Connection: upgrade");
    return -1;
  }
  acc = eddy_http_response_header(r, "sec-websocket-accept");
  if (acc == NULL || acc->value_len != strlen(c->accept) ||
      memcmp(acc->value, c->accept, acc->value_len) != 0) {
    snprintf(c->detail, sizeof c->detail, "a wrong Sec-WebSocket-Accept");
    return -1;
  }
  *proto = eddy_http_response_header(r, "sec-websocket-protocol");
  if (*proto &&
      !was_offered(c->offered, (*proto)->value, (*proto)->value_len)) {
    snprintf(c->detail, sizeof c->detail,
             "the server chose a subprotocol that was not offered");
    return -1;
  }
  ext = eddy_http_response_header(r, "sec-websocket-extensions");
  if (ext) {
    if (!c->deflate ||
        eddy__ws_parse_extensions(ext->value, ext->value_len, read_answer, &a) <
            0 ||
        a.bad) {
      snprintf(c->detail, sizeof c->detail,
               "the server chose an extension that was not offered");
      return -1;
    }
    *pmd = a.pmd;
  }
  return 0;
}

static void on_hs_data(eddy_stream *s, const char *data, size_t len,
                       void *arg) {
  client *c = arg;
  eddy_http_header fields[64];
  eddy_http_response_head r;
  const eddy_http_header *proto = NULL;
  eddy__ws_pmd pmd;
  eddy_ws *ws = c->ws;
  size_t prev = eddy_buf_len(&c->in);
  int rc;
  if (eddy_buf_append(&c->in, data, len) < 0) {
    give_up(c, -ENOMEM, "out of memory");
    return;
  }
  rc = eddy_http_parse_response(eddy_buf_data(&c->in), eddy_buf_len(&c->in),
                                prev, NULL, fields, 64, &r);
  if (rc == 0 && eddy_buf_len(&c->in) > MAX_RESPONSE) {
    give_up(c, EDDY_EHTTP, "the response head is too long");
    return;
  }
  if (rc == 0)
    return;
  if (rc < 0) {
    give_up(c, EDDY_EHTTP, r.error);
    return;
  }
  if (check_response(c, &r, &pmd, &proto) < 0) {
    give_up(c, EDDY_EHTTP, c->detail);
    return;
  }
  if (eddy__ws_set_negotiated(ws, &pmd, proto ? proto->value : NULL,
                              proto ? proto->value_len : 0) < 0) {
    give_up(c, -ENOMEM, "out of memory");
    return;
  }
  /* Open: the stream is the connection's now. */
  eddy__ws_set_client(ws, NULL);
  eddy__ws_start(ws, s);
  eddy__ws_open_cb(ws, 0, "");
  eddy__ws_feed(ws, eddy_buf_data(&c->in) + r.head_len,
                eddy_buf_len(&c->in) - r.head_len);
  client_free(c);
}

static void on_hs_eof(eddy_stream *s, void *arg) {
  (void)s;
  give_up(arg, -ECONNRESET, "the server closed the connection");
}

static void on_hs_close(eddy_stream *s, int status, const char *detail,
                        void *arg) {
  client *c = arg;
  (void)s;
  c->s = NULL;
  finish_failed(c, status ? status : -ECONNRESET,
                status ? detail : "the server closed the connection");
}

static const eddy_stream_callbacks hs_cb = {on_hs_data, on_hs_eof, NULL,
                                            on_hs_close};

static void on_connected(eddy_connect *req, eddy_stream *s, int status,
                         const char *detail, void *arg) {
  client *c = arg;
  int r;
  (void)req;
  c->req = NULL;
  if (status < 0) {
    finish_failed(c, status, detail);
    return;
  }
  c->s = s;
  eddy_stream_set_callbacks(s, &hs_cb, c);
  r = eddy_stream_write(s, eddy_buf_data(&c->text), eddy_buf_len(&c->text));
  eddy_buf_free(&c->text);
  if (r < 0)
    give_up(c, r, "the request could not be sent");
}

/* ---- The request ----------------------------------------------------------------- */

static int clean(const char *s) {
  for (; s && *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7F)
      return 0;
  return 1;
}

static int add(eddy_buf *b, const char *a, const char *v) {
  int r = eddy_buf_append(b, a, strlen(a));
  if (r == 0 && v)
    r = eddy_buf_append(b, v, strlen(v));
  if (r == 0 && v)
    r = eddy_buf_append(b, "\r\n", 2);
  return r;
}

static int build_request(client *c, const eddy_ws_options *o,
                         const eddy_endpoint *ep) {
  uint8_t raw[16];
  char key[32], host[EDDY_ENDPOINT_HOST_MAX + 16];
  int r;
  size_t n = 0;
  if (RAND_bytes(raw, sizeof raw) != 1)
    return -EIO;
  eddy__ws_base64(raw, sizeof raw, key);
  if ((r = eddy_ws_accept_key(key, 24, c->accept, sizeof c->accept)) < 0)
    return r;
  if (o->host) {
    snprintf(host, sizeof host, "%s", o->host);
  } else {
    int v6 = strchr(ep->host, ':') != NULL;
    int dflt = ep->port == (ep->tls ? 443u : 80u);
    if (ep->kind == EDDY_ENDPOINT_UNIX)
      snprintf(host, sizeof host, "localhost");
    else if (dflt)
      snprintf(host, sizeof host, v6 ? "[%s]" : "%s", ep->host);
    else
      snprintf(host, sizeof host, v6 ? "[%s]:%u" : "%s:%u", ep->host, ep->port);
  }
  for (size_t i = 0; i < o->nsubprotocols; i++)
    n += strlen(o->subprotocols[i]) + 2;
  if (n) {
    c->offered = eddy__malloc(n + 1);
    if (c->offered == NULL)
      return -ENOMEM;
    c->offered[0] = '\0';
    for (size_t i = 0; i < o->nsubprotocols; i++) {
      if (i)
        strcat(c->offered, ", ");
      strcat(c->offered, o->subprotocols[i]);
    }
  }
  c->deflate = o->deflate;
  if ((r = add(&c->text, "GET ", NULL)) < 0 ||
      (r = add(&c->text, o->path ? o->path : "/", NULL)) < 0 ||
      (r = add(&c->text, " HTTP/1.1\r\nHost: ", host)) < 0 ||
      (r = add(&c->text,
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ",
               key)) < 0 ||
      (o->origin && (r = add(&c->text, "Origin: ", o->origin)) < 0) ||
      (c->offered &&
       (r = add(&c->text, "Sec-WebSocket-Protocol: ", c->offered)) < 0) ||
      (o->deflate &&
       (r = add(&c->text, "Sec-WebSocket-Extensions: ",
                "permessage-deflate; client_max_window_bits")) < 0) ||
      (r = add(&c->text, "\r\n", NULL)) < 0)
    return r;
  return 0;
}

static int options_clean(const eddy_ws_options *o) {
  if (!clean(o->host) || !clean(o->origin) || !clean(o->path) ||
      (o->path && (o->path[0] != '/' || strchr(o->path, ' '))))
    return 0;
  for (size_t i = 0; i < o->nsubprotocols; i++) {
    const char *p = o->subprotocols[i];
    if (p == NULL || *p == '\0')
      return 0;
    for (; *p; p++)
      if (!eddy__http_is_tchar((unsigned char)*p))
        return 0;
  }
  return 1;
}

int eddy_ws_connect(eddy_loop *loop, const char *endpoint,
                    const eddy_ws_options *opt, const eddy_ws_callbacks *cb,
                    void *arg, eddy_ws **out, char *err, size_t errlen) {
  static const eddy_ws_options none;
  eddy_endpoint ep;
  eddy_ws *ws;
  client *c;
  int r;
  const eddy_ws_options *o = opt ? opt : &none;
  if ((r = eddy_endpoint_parse_client(endpoint, &ep, err, errlen)) < 0)
    return r;
  if (!options_clean(o))
    return -EINVAL;
  if ((r = eddy__ws_new(loop, 0, o, cb, arg, &ws)) < 0)
    return r;
  c = eddy__calloc(1, sizeof *c);
  if (c == NULL) {
    eddy__ws_free(ws);
    return -ENOMEM;
  }
  c->ws = ws;
  eddy_buf_init(&c->text, 0);
  eddy_buf_init(&c->in, 0);
  eddy__timer_init(loop, &c->timer, on_timeout, c);
  if ((r = build_request(c, o, &ep)) < 0 ||
      (r = eddy__timer_start(&c->timer, o->handshake_timeout_ns > 0
                                            ? o->handshake_timeout_ns
                                            : DEFAULT_HANDSHAKE_TIMEOUT)) < 0 ||
      (r = eddy_connect_endpoint(loop, &ep, on_connected, c, &c->req)) < 0) {
    client_free(c);
    eddy__ws_free(ws);
    return r;
  }
  eddy__ws_set_client(ws, c);
  *out = ws;
  return 0;
}
