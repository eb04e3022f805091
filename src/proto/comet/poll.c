/* poll.c: long-polling. A held exchange, a timer, and (for a hub's topic)
 * a subscription that lasts until the first message. */
#include <errno.h>
#include <string.h>

#include "core/loop.h"
#include "proto/comet/comet.h"
#include "sys/alloc.h"

#define DEFAULT_TIMEOUT (25 * EDDY_NSEC_PER_SEC)

struct eddy_comet_poll {
  eddy_http_exchange *x;
  eddy_comet_poll_options o;
  eddy__timer timer;
  eddy_comet_sub *sub;
  eddy_buf body;  /* the answer being built from hub messages */
  int collecting; /* a replay is filling body */
  size_t count;   /* messages in body */
};

static const char *content_type(const eddy_comet_poll *p) {
  return p->o.content_type ? p->o.content_type : "application/json";
}

/* Frees p once its exchange has ended, telling done (status > 0: not). */
static void finish(eddy_comet_poll *p, int status, int tell) {
  eddy__timer_stop(&p->timer);
  if (p->sub)
    eddy_comet_unsubscribe(p->sub);
  eddy_buf_free(&p->body);
  if (tell && p->o.done)
    p->o.done(p, status, p->o.arg);
  eddy__free(p);
}

static void timed_out(eddy__timer *t, void *arg) {
  eddy_comet_poll *p = arg;
  int status = p->o.empty_status ? p->o.empty_status : 204;
  const char *body = status == 204 ? NULL : p->o.empty_body;
  (void)t;
  eddy_http_on_gone(p->x, NULL, NULL);
  (void)eddy_http_respond(p->x, status, body ? content_type(p) : NULL, body,
                          body ? strlen(body) : 0);
  finish(p, -ETIMEDOUT, 1);
}

static void on_gone(eddy_http_exchange *x, void *arg) {
  eddy_comet_poll *p = arg;
  eddy_http_on_gone(x, NULL, NULL);
  (void)eddy_http_respond_status(x, 503); /* only ends it: the client left */
  finish(p, EDDY_ECLOSED, 1);
}

int eddy_comet_poll_start(eddy_http_exchange *x,
                          const eddy_comet_poll_options *o,
                          eddy_comet_poll **out) {
  eddy_comet_poll *p;
  *out = NULL;
  if (eddy_http_stream(x) == NULL) {
    (void)eddy_http_respond_status(x, 503);
    return EDDY_ECLOSED;
  }
  if ((p = eddy__calloc(1, sizeof *p)) == NULL) {
    (void)eddy_http_respond_status(x, 503);
    return -ENOMEM;
  }
  if (o)
    p->o = *o;
  if (p->o.timeout_ns <= 0)
    p->o.timeout_ns = DEFAULT_TIMEOUT;
  p->x = x;
  eddy_buf_init(&p->body, 0);
  eddy__timer_init(eddy_http_loop(x), &p->timer, timed_out, p);
  if (eddy__timer_start(&p->timer, p->o.timeout_ns) != 0) {
    eddy__free(p);
    (void)eddy_http_respond_status(x, 503);
    return -ENOMEM;
  }
  eddy_http_on_gone(x, on_gone, p);
  *out = p;
  return 0;
}

int eddy_comet_poll_respond(eddy_comet_poll *p, int status, const char *type,
                            const void *body, size_t len) {
  int e;
  eddy_http_on_gone(p->x, NULL, NULL);
  e = eddy_http_respond(p->x, status, type, body, len);
  if (e == -EINVAL) { /* a bad status: the exchange is still ours */
    eddy_http_on_gone(p->x, on_gone, p);
    return e;
  }
  finish(p, 0, 0);
  return e;
}

void eddy_comet_poll_cancel(eddy_comet_poll *p) {
  if (p == NULL)
    return;
  eddy_http_on_gone(p->x, NULL, NULL);
  (void)eddy_http_respond_status(p->x, 503);
  finish(p, 0, 0);
}

eddy_http_exchange *eddy_comet_poll_exchange(const eddy_comet_poll *p) {
  return p->x;
}

/* ---- Waiting on a hub -------------------------------------------------------- */

static const char * or (const char *s, const char *d) {
  return s ? s : d;
}

/* Answers with the messages in body, closed. */
static void answer(eddy_comet_poll *p) {
  const char *close = or (p->o.close, "]");
  int e = eddy_buf_append(&p->body, close, strlen(close));
  eddy_http_on_gone(p->x, NULL, NULL);
  if (e != 0) {
    (void)eddy_http_respond_status(p->x, 500);
    finish(p, e, 1);
    return;
  }
  (void)eddy_http_respond(p->x, 200, content_type(p), eddy_buf_data(&p->body),
                          eddy_buf_len(&p->body));
  finish(p, 0, 1);
}

static void hub_send(eddy_comet_sub *sub, void *block, size_t len, void *arg) {
  eddy_comet_poll *p = arg;
  const char *sep = or (p->o.sep, ",");
  int e = 0;
  (void)sub;
  if (p->count > 0)
    e = eddy_buf_append(&p->body, sep, strlen(sep));
  if (e == 0)
    e = eddy_buf_append(&p->body, block, len);
  eddy_comet_block_unref(block);
  if (e != 0) { /* this message cannot be kept: answer with what there is */
    if (p->collecting)
      return;
    eddy_http_on_gone(p->x, NULL, NULL);
    (void)eddy_http_respond_status(p->x, 500);
    finish(p, e, 1);
    return;
  }
  p->count++;
  if (!p->collecting)
    answer(p);
}

static void hub_gone(eddy_comet_sub *sub, void *arg) {
  eddy_comet_poll *p = arg;
  (void)sub;
  p->sub = NULL;
}

static const eddy_comet_sub_callbacks poll_callbacks = {hub_send, hub_gone};

int eddy_comet_poll_hub(eddy_comet_poll *p, eddy_comet_hub *h,
                        const char *topic, int format, uint64_t since) {
  const char *open = or (p->o.open, "[");
  int e;
  if (p->sub)
    return -EALREADY;
  if ((e = eddy_buf_append(&p->body, open, strlen(open))) != 0)
    return e;
  if ((e = eddy_comet_subscribe(h, topic, format, &poll_callbacks, p,
                                &p->sub)) != 0) {
    eddy_buf_reset(&p->body);
    return e;
  }
  p->collecting = 1;
  e = eddy_comet_replay(p->sub, since);
  p->collecting = 0;
  if (e < 0 && p->count == 0) {
    eddy_comet_unsubscribe(p->sub);
    p->sub = NULL;
    eddy_buf_reset(&p->body);
    return e;
  }
  if (p->count > 0)
    answer(p);
  return 0;
}

int eddy_comet_query_id(const eddy_http_exchange *x, const char *name,
                        uint64_t *value) {
  const eddy_http_request *r = eddy_http_request_of(x);
  const char *q = r->query, *end = r->query ? r->query + r->query_len : NULL;
  size_t nl = strlen(name);
  while (q && q < end) {
    const char *amp = memchr(q, '&', (size_t)(end - q));
    const char *stop = amp ? amp : end;
    if ((size_t)(stop - q) > nl && memcmp(q, name, nl) == 0 && q[nl] == '=')
      return eddy__comet_parse_id(q + nl + 1, (size_t)(stop - q - nl - 1),
                                  value);
    q = amp ? amp + 1 : NULL;
  }
  return -ENOENT;
}
