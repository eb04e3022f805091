/* sse.c: server-sent events on an HTTP exchange.
 *
 * Every event becomes a block in the stream's wire format (the event as
 * one HTTP/1.1 chunk, or bare for an HTTP/1.0 body the close ends), and a
 * block goes to the connection's stream with eddy_stream_write_owned: a
 * hub's block is queued on every stream as it is, never copied.
 * (through eddy_http_write_framed, which sends the server's own output,
 * the response head, first). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/loop.h"
#include "proto/comet/comet.h"
#include "sys/alloc.h"

#define DEFAULT_HEARTBEAT (15 * EDDY_NSEC_PER_SEC)
#define DEFAULT_MAX_UNSENT (256u * 1024)

struct eddy_comet_sse {
  eddy_http_exchange *x;
  eddy_loop *loop;
  eddy_comet_sse_options o;
  int chunked;
  int gone;         /* the client went, or was disconnected */
  int disconnected; /* by the slow-consumer policy */
  uint64_t dropped;
  int64_t last_write; /* loop time, for the heartbeat */
  eddy__timer heartbeat;
  eddy_comet_sub *sub;
};

static size_t unsent(const eddy_comet_sse *sse) {
  eddy_stream *s = eddy_http_stream(sse->x);
  return s ? eddy_stream_buffered(s) : 0;
}

/* The slow-consumer policy, for len more bytes: 0 to send them, 1 to drop
 * them, -ENOBUFS once the client has been disconnected. */
static int over_limit(eddy_comet_sse *sse, size_t len) {
  size_t n = unsent(sse);
  eddy_stream *s;
  if (n == 0 || n + len <= sse->o.max_unsent)
    return 0;
  if (sse->o.slow == EDDY_COMET_DROP) {
    sse->dropped++;
    return 1;
  }
  sse->dropped++;
  sse->disconnected = 1;
  sse->gone = 1;
  if ((s = eddy_http_stream(sse->x)) != NULL)
    eddy_stream_abort(s); /* the server's on_gone reports it, from the loop */
  return -ENOBUFS;
}

/* Writes one block; the reference is taken on every outcome. free_fn
 * NULL: static bytes. */
static int emit(eddy_comet_sse *sse, void *b, size_t len,
                void (*free_fn)(void *)) {
  int e;
  if (sse->gone || eddy_http_stream(sse->x) == NULL) {
    if (free_fn)
      free_fn(b);
    return sse->disconnected ? -ENOBUFS : EDDY_ECLOSED;
  }
  if ((e = over_limit(sse, len)) != 0) {
    if (free_fn)
      free_fn(b);
    return e;
  }
  sse->last_write = eddy_loop_now(sse->loop);
  return eddy_http_write_framed(sse->x, b, len, free_fn);
}

static const char heartbeat_chunked[] = "3\r\n:\n\n\r\n";
static const char heartbeat_bare[] = ":\n\n";

static void heartbeat_fired(eddy__timer *t, void *arg) {
  eddy_comet_sse *sse = arg;
  int64_t now = eddy_loop_now(sse->loop);
  int64_t quiet = now - sse->last_write;
  if (sse->gone)
    return;
  if (quiet < sse->o.heartbeat_ns) { /* something went meanwhile */
    (void)eddy__timer_start(t, sse->o.heartbeat_ns - quiet);
    return;
  }
  /* With bytes still on their way the connection is not idle. */
  if (unsent(sse) == 0) {
    if (sse->chunked)
      (void)emit(sse, (void *)heartbeat_chunked, sizeof heartbeat_chunked - 1,
                 NULL);
    else
      (void)emit(sse, (void *)heartbeat_bare, sizeof heartbeat_bare - 1, NULL);
  }
  sse->last_write = now;
  if (!sse->gone)
    (void)eddy__timer_start(t, sse->o.heartbeat_ns);
}

static void on_gone(eddy_http_exchange *x, void *arg) {
  eddy_comet_sse *sse = arg;
  (void)x;
  sse->gone = 1;
  eddy__timer_stop(&sse->heartbeat);
  if (sse->o.gone)
    sse->o.gone(sse, sse->disconnected ? -ENOBUFS : EDDY_ECLOSED, sse->o.arg);
}

/* Ends x after a failed start: 503 if nothing went out. A head that
 * could not be queued leaves the connection without a response it can
 * frame: it is aborted. */
static int fail_start(eddy_http_exchange *x, int e) {
  if (eddy_http_respond_status(x, 503) == -EALREADY) {
    eddy_stream *s = eddy_http_stream(x);
    if (s)
      eddy_stream_abort(s);
    (void)eddy_http_end(x);
  }
  return e;
}

int eddy_comet_sse_start(eddy_http_exchange *x, const eddy_comet_sse_options *o,
                         eddy_comet_sse **out) {
  const eddy_http_request *req = eddy_http_request_of(x);
  eddy_comet_sse *sse;
  int e;
  *out = NULL;
  if (eddy_http_stream(x) == NULL)
    return fail_start(x, EDDY_ECLOSED);
  if ((e = eddy_http_set_header(x, "Cache-Control", "no-cache")) != 0 ||
      (e = eddy_http_set_header(x, "X-Accel-Buffering", "no")) != 0) {
    if (e == -EALREADY)
      return e; /* not ours to end */
    return fail_start(x, e);
  }
  if (req->method == EDDY_HTTP_HEAD) {
    if ((e = eddy_http_begin(x, 200, "text/event-stream")) != 0)
      return fail_start(x, e);
    (void)eddy_http_end(x);
    return 1;
  }
  if ((sse = eddy__calloc(1, sizeof *sse)) == NULL)
    return fail_start(x, -ENOMEM);
  if (o)
    sse->o = *o;
  if (sse->o.heartbeat_ns == 0)
    sse->o.heartbeat_ns = DEFAULT_HEARTBEAT;
  if (sse->o.max_unsent == 0)
    sse->o.max_unsent = DEFAULT_MAX_UNSENT;
  sse->x = x;
  sse->loop = eddy_http_loop(x);
  sse->chunked = req->version_minor >= 1;
  if ((e = eddy_http_begin(x, 200, "text/event-stream")) != 0) {
    eddy__free(sse);
    return fail_start(x, e);
  }
  eddy__timer_init(sse->loop, &sse->heartbeat, heartbeat_fired, sse);
  eddy_http_on_gone(x, on_gone, sse);
  sse->last_write = eddy_loop_now(sse->loop);
  if (sse->o.retry_ms > 0 && (e = eddy_comet_sse_retry(sse, sse->o.retry_ms))) {
    eddy_comet_sse_close(sse);
    return e;
  }
  if (sse->o.heartbeat_ns > 0 &&
      eddy__timer_start(&sse->heartbeat, sse->o.heartbeat_ns) != 0) {
    eddy_comet_sse_close(sse);
    return -ENOMEM;
  }
  *out = sse;
  return 0;
}

const char *eddy_comet_sse_last_event_id(const eddy_comet_sse *sse,
                                         size_t *len) {
  const eddy_http_header *h = eddy_http_find_header(eddy_http_request_of(
                                                        sse->x),
                                                    "Last-Event-ID");
  *len = h ? h->value_len : 0;
  return h ? h->value : NULL;
}

int eddy_comet_sse_format(const eddy_comet_sse *sse) {
  return sse->chunked ? EDDY_COMET_SSE_CHUNKED : EDDY_COMET_SSE;
}

int eddy_comet_sse_send_block(eddy_comet_sse *sse, void *block, size_t len) {
  return emit(sse, block, len, eddy_comet_block_unref);
}

/* Frames bytes already in b (an event, a comment) as this stream sends
 * them, in a new block. */
static int send_buf(eddy_comet_sse *sse, eddy_buf *b) {
  char size[24];
  size_t n = eddy_buf_len(b), hn = 0;
  char *block, *w;
  if (sse->chunked)
    hn = (size_t)snprintf(size, sizeof size, "%zx\r\n", n);
  if ((block = eddy_comet_block_new(hn + n + (sse->chunked ? 2 : 0))) == NULL) {
    eddy_buf_free(b);
    return -ENOMEM;
  }
  w = block;
  memcpy(w, size, hn);
  memcpy(w + hn, eddy_buf_data(b), n);
  if (sse->chunked)
    memcpy(w + hn + n, "\r\n", 2);
  eddy_buf_free(b);
  return emit(sse, block, eddy_comet_block_len(block), eddy_comet_block_unref);
}

int eddy_comet_sse_send(eddy_comet_sse *sse, const char *event, const char *id,
                        const void *data, size_t len) {
  eddy_buf b;
  int e;
  if (sse->gone)
    return sse->disconnected ? -ENOBUFS : EDDY_ECLOSED;
  eddy_buf_init(&b, 0);
  if ((e = eddy_comet_sse_encode(&b, event, id, data, len)) != 0) {
    eddy_buf_free(&b);
    return e;
  }
  return send_buf(sse, &b);
}

int eddy_comet_sse_comment(eddy_comet_sse *sse, const char *text) {
  eddy_buf b;
  int e;
  if (text == NULL || strpbrk(text, "\r\n"))
    return -EINVAL;
  if (sse->gone)
    return sse->disconnected ? -ENOBUFS : EDDY_ECLOSED;
  eddy_buf_init(&b, 0);
  if ((e = eddy_buf_append(&b, ": ", 2)) != 0 ||
      (e = eddy_buf_append(&b, text, strlen(text))) != 0 ||
      (e = eddy_buf_append(&b, "\n\n", 2)) != 0) {
    eddy_buf_free(&b);
    return e;
  }
  return send_buf(sse, &b);
}

int eddy_comet_sse_retry(eddy_comet_sse *sse, int64_t ms) {
  char text[40];
  eddy_buf b;
  int n, e;
  if (ms < 0)
    return -EINVAL;
  if (sse->gone)
    return sse->disconnected ? -ENOBUFS : EDDY_ECLOSED;
  n = snprintf(text, sizeof text, "retry: %" PRId64 "\n\n", ms);
  eddy_buf_init(&b, 0);
  if ((e = eddy_buf_append(&b, text, (size_t)n)) != 0) {
    eddy_buf_free(&b);
    return e;
  }
  return send_buf(sse, &b);
}

/* ---- Following a hub's topic ------------------------------------------------ */

static void hub_send(eddy_comet_sub *sub, void *block, size_t len, void *arg) {
  (void)sub;
  (void)eddy_comet_sse_send_block(arg, block, len);
}

static void hub_gone(eddy_comet_sub *sub, void *arg) {
  eddy_comet_sse *sse = arg;
  (void)sub;
  sse->sub = NULL;
}

static const eddy_comet_sub_callbacks follow_callbacks = {hub_send, hub_gone};

int eddy_comet_sse_follow(eddy_comet_sse *sse, eddy_comet_hub *h,
                          const char *topic) {
  const char *last;
  size_t n;
  uint64_t since;
  int e;
  if (sse->sub)
    return -EALREADY;
  if ((e = eddy_comet_subscribe(h, topic, eddy_comet_sse_format(sse),
                                &follow_callbacks, sse, &sse->sub)) != 0)
    return e;
  last = eddy_comet_sse_last_event_id(sse, &n);
  if (last && eddy__comet_parse_id(last, n, &since) == 0 &&
      (e = eddy_comet_replay(sse->sub, since)) < 0)
    return e;
  return 0;
}

uint64_t eddy_comet_sse_dropped(const eddy_comet_sse *sse) {
  return sse->dropped;
}

eddy_http_exchange *eddy_comet_sse_exchange(const eddy_comet_sse *sse) {
  return sse->x;
}

void eddy_comet_sse_close(eddy_comet_sse *sse) {
  if (sse == NULL)
    return;
  if (sse->sub)
    eddy_comet_unsubscribe(sse->sub);
  eddy__timer_stop(&sse->heartbeat);
  eddy_http_on_gone(sse->x, NULL, NULL);
  (void)eddy_http_end(sse->x);
  eddy__free(sse);
}
