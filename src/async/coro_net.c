/* coro_net.c: connecting and accepting with waiting calls.
 *
 * A connect's state is on the heap, not on the coroutine's stack: when the
 * coroutine is cancelled, the connect is given up, but its callback still
 * comes later (with -ECANCELED, or with a stream that won the race, which
 * is then closed), and it frees the state.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "async/coro.h"
#include "sys/alloc.h"

typedef struct connecting {
  eddy_coro *co; /* NULL once the coroutine gave up */
  eddy_connect *req;
  eddy_stream *s;
  int status;
  char detail[256];
} connecting;

static void on_connect(eddy_connect *req, eddy_stream *s, int status,
                       const char *detail, void *arg) {
  connecting *c = arg;
  (void)req;
  if (c->co == NULL) {
    if (s)
      eddy_stream_abort(s);
    eddy__free(c);
    return;
  }
  c->s = s;
  c->status = status;
  snprintf(c->detail, sizeof c->detail, "%s", detail ? detail : "");
  eddy__coro_wake(c->co, 0, 0);
}

static void give_up(void *arg) {
  connecting *c = arg;
  c->co = NULL;
  eddy_connect_cancel(c->req);
}

int eddy_coro_connect(eddy_coro *co, const char *endpoint,
                      eddy_coro_stream **out, char *err, size_t errlen) {
  connecting *c;
  int r = eddy__coro_check(co);
  if (r != 0)
    return r;
  if ((c = eddy__calloc(1, sizeof *c)) == NULL)
    return -ENOMEM;
  c->co = co;
  r = eddy_connect_to(co->loop, endpoint, on_connect, c, &c->req, err, errlen);
  if (r != 0) {
    eddy__free(c);
    return r;
  }
  r = eddy__coro_wait(co, give_up, c);
  if (r != 0) /* cancelled: the callback frees c */
    return r;
  if (c->status != 0) {
    r = c->status;
    if (errlen > 0)
      snprintf(err, errlen, "%s", c->detail);
    eddy__free(c);
    return r;
  }
  r = eddy_coro_stream_open(co, c->s, NULL, out);
  if (r != 0)
    eddy_stream_abort(c->s);
  eddy__free(c);
  return r;
}

/* ---- Listeners ------------------------------------------------------------------ */

#define QUEUE_MAX 128

struct eddy_coro_listener {
  eddy__owned own;
  eddy_listener *l;
  eddy_coro *waiter;
  eddy_stream *queue[QUEUE_MAX]; /* accepted, not yet taken; oldest first */
  int len;
};

/* A queued stream that closes (eddy_loop_close_all, a reset) leaves the
 * queue. */
static void on_queued_close(eddy_stream *s, int status, const char *detail,
                            void *arg) {
  eddy_coro_listener *cl = arg;
  (void)status;
  (void)detail;
  for (int i = 0; i < cl->len; i++) {
    if (cl->queue[i] == s) {
      memmove(&cl->queue[i], &cl->queue[i + 1],
              (size_t)(cl->len - i - 1) * sizeof cl->queue[0]);
      cl->len--;
      return;
    }
  }
}

static const eddy_stream_callbacks queued_callbacks = {NULL, NULL, NULL,
                                                       on_queued_close};

static void on_accept(eddy_listener *l, eddy_stream *s, void *arg) {
  eddy_coro_listener *cl = arg;
  (void)l;
  if (cl->len == QUEUE_MAX) {
    eddy_stream_abort(s);
    return;
  }
  eddy_stream_set_callbacks(s, &queued_callbacks, cl);
  cl->queue[cl->len++] = s;
  if (cl->waiter) {
    eddy_coro *w = cl->waiter;
    cl->waiter = NULL;
    eddy__coro_wake(w, 0, 0);
  }
}

static void release(eddy__owned *o) {
  eddy_coro_listener_close((eddy_coro_listener *)o);
}

int eddy_coro_listen(eddy_coro *co, const char *endpoint,
                     eddy_coro_listener **out, char *err, size_t errlen) {
  eddy_coro_listener *cl = eddy__calloc(1, sizeof *cl);
  int r;
  if (cl == NULL)
    return -ENOMEM;
  r = eddy_listen(co->loop, endpoint, on_accept, cl, &cl->l, err, errlen);
  if (r != 0) {
    eddy__free(cl);
    return r;
  }
  eddy__coro_own(co, &cl->own, release);
  *out = cl;
  return 0;
}

eddy_listener *eddy_coro_listener_get(const eddy_coro_listener *cl) {
  return cl->l;
}

static void stop_accepting(void *arg) {
  ((eddy_coro_listener *)arg)->waiter = NULL;
}

int eddy_coro_accept(eddy_coro *co, eddy_coro_listener *cl,
                     eddy_coro_stream **out) {
  eddy_stream *s;
  int r = eddy__coro_check(co);
  if (r != 0)
    return r;
  if (cl->waiter)
    return -EBUSY;
  if (cl->len == 0) {
    cl->waiter = co;
    r = eddy__coro_wait(co, stop_accepting, cl);
    if (r != 0)
      return r;
  }
  s = cl->queue[0];
  memmove(&cl->queue[0], &cl->queue[1],
          (size_t)(cl->len - 1) * sizeof cl->queue[0]);
  cl->len--;
  r = eddy_coro_stream_open(co, s, NULL, out);
  if (r != 0)
    eddy_stream_abort(s);
  return r;
}

void eddy_coro_listener_close(eddy_coro_listener *cl) {
  eddy__coro_disown(&cl->own);
  if (cl->waiter) {
    eddy_coro *w = cl->waiter;
    cl->waiter = NULL;
    eddy__coro_wake(w, EDDY_ECLOSED, 1);
  }
  for (int i = 0; i < cl->len; i++) {
    eddy_stream_set_callbacks(cl->queue[i], NULL, NULL);
    eddy_stream_abort(cl->queue[i]);
  }
  eddy_listener_close(cl->l);
  eddy__free(cl);
}
