/* async.c: handlers written as coroutines, and answers given as Deferreds
 * (see eddy/http.h, "Coroutines and Deferreds"). */
#include <errno.h>
#include <string.h>

#include "eddy/async.h"
#include "eddy/coro.h"
#include "eddy/http.h"
#include "proto/http/http.h"
#include "sys/alloc.h"

/* ---- Coroutine handlers ------------------------------------------------------ */

typedef struct coro_route {
  eddy_http_coro_handler fn;
  void *arg;
} coro_route;

typedef struct coro_call {
  eddy_http_exchange *x;
  const coro_route *route;
  eddy_coro *co;
  int ended; /* set by the exchange as it ends (eddy__http_watch_end) */
} coro_call;

static void gone(eddy_http_exchange *x, void *arg) {
  coro_call *call = arg;
  (void)x;
  eddy_coro_cancel(call->co);
}

static int run_handler(eddy_coro *co, void *arg) {
  coro_call *call = arg;
  int rc = call->route->fn(co, call->x, call->route->arg);
  /* A handler that returned without answering: the client still gets an
   * answer, and the exchange is ended, as it must be. */
  if (!call->ended)
    (void)eddy_http_respond(call->x, rc == -ECANCELED ? 503 : 500,
                            "text/plain; charset=utf-8",
                            "the handler did not answer\n", 27);
  return rc;
}

static void handler_done(eddy_coro *co, int result, void *arg) {
  (void)co;
  (void)result;
  eddy__free(arg);
}

static void start_coro(eddy_http_exchange *x, void *arg) {
  coro_call *call = eddy__calloc(1, sizeof *call);
  if (call == NULL) {
    (void)eddy_http_respond(x, 503, NULL, NULL, 0);
    return;
  }
  call->x = x;
  call->route = arg;
  eddy__http_watch_end(x, &call->ended);
  if (eddy_coro_spawn(eddy_http_loop(x), run_handler, call, NULL, &call->co) !=
      0) {
    eddy__free(call);
    (void)eddy_http_respond(x, 503, NULL, NULL, 0);
    return;
  }
  eddy_coro_on_done(call->co, handler_done, call);
  eddy_http_on_gone(x, gone, call);
}

int eddy_http_route_coro(eddy_http_server *srv, const char *method,
                         const char *pattern, eddy_http_coro_handler fn,
                         void *arg) {
  coro_route *r;
  int e;
  if (fn == NULL)
    return -EINVAL;
  if ((r = eddy__malloc(sizeof *r)) == NULL)
    return -ENOMEM;
  r->fn = fn;
  r->arg = arg;
  if ((e = eddy__http_route_owned(srv, method, pattern, start_coro, r)) != 0)
    eddy__free(r);
  return e;
}

/* ---- Answers as Deferreds -------------------------------------------------------- */

typedef struct later {
  eddy_http_exchange *x;
  eddy_deferred *d;
} later;

/* Each runs once (a cancellation fires the errback too), answers, and
 * releases the Deferred and the glue. */
static void answered(eddy_deferred *d, void *arg) {
  later *l = arg;
  const eddy_http_response *r = eddy_deferred_value(d);
  if (r == NULL)
    (void)eddy_http_respond(l->x, 500, NULL, NULL, 0);
  else
    (void)eddy_http_respond(l->x, r->status, r->content_type, r->body, r->len);
  eddy__free(l);
  eddy_deferred_free(d);
}

static void failed(eddy_deferred *d, void *arg) {
  later *l = arg;
  int timeout = eddy_deferred_error(d) == -ETIMEDOUT;
  (void)eddy_http_respond(l->x, timeout ? 504 : 500,
                          "text/plain; charset=utf-8",
                          timeout ? "504 Gateway Timeout\n"
                                  : "500 Internal Server Error\n",
                          timeout ? 20 : 26);
  /* Answered: not an error left for the unhandled report. */
  eddy_deferred_set_value(d, NULL, NULL);
  eddy__free(l);
  eddy_deferred_free(d);
}

/* The client went: the Deferred is cancelled, and its errback ends the
 * exchange (answering nothing now). */
static void later_gone(eddy_http_exchange *x, void *arg) {
  later *l = arg;
  (void)x;
  eddy_deferred_cancel(l->d);
}

int eddy_http_respond_deferred(eddy_http_exchange *x, eddy_deferred *d) {
  later *l = eddy__calloc(1, sizeof *l);
  int e;
  if (l == NULL) {
    eddy_deferred_free(d);
    (void)eddy_http_respond(x, 503, NULL, NULL, 0);
    return -ENOMEM;
  }
  l->x = x;
  l->d = d;
  /* Before the callbacks: if d has fired, they run (and end x) at once. */
  eddy_http_on_gone(x, later_gone, l);
  if ((e = eddy_deferred_add_callbacks(d, answered, failed, l)) != 0) {
    eddy_http_on_gone(x, NULL, NULL);
    eddy__free(l);
    eddy_deferred_free(d);
    (void)eddy_http_respond(x, 503, NULL, NULL, 0);
  }
  return e;
}
