/* coro_await.c: where coroutines and Deferreds meet: a coroutine waits on
 * a Deferred (eddy_coro_await), and a coroutine's end fires one
 * (eddy_coro_join).
 *
 * await adds one (callback, errback) pair to the Deferred that takes its
 * result and wakes the coroutine. The wait's state lives on the
 * coroutine's stack: it stays there until the coroutine returns from the
 * wait, and a cancelled wait frees the Deferred (whose chain then runs our
 * pair, which sees the wait abandoned) before the coroutine continues. */
#include <errno.h>
#include <string.h>

#include "async/coro.h"
#include "sys/alloc.h"

typedef struct awaiting {
  eddy_coro *co; /* NULL once the wait is abandoned */
  eddy_deferred *d;
  eddy_outcome *o;
  int fired;
} awaiting;

static void on_fired(eddy_deferred *d, void *arg) {
  awaiting *a = arg;
  if (a->co == NULL)
    return;
  eddy_deferred_take_outcome(d, a->o);
  a->fired = 1;
  eddy__coro_wake(a->co, 0, 0);
}

static void abandon(void *arg) {
  awaiting *a = arg;
  a->co = NULL;
  eddy_deferred_free(a->d);
  a->d = NULL;
}

int eddy_coro_await(eddy_coro *co, eddy_deferred *d, eddy_outcome *o) {
  awaiting a = {co, d, o, 0};
  int err;
  memset(o, 0, sizeof *o);
  if (d == NULL)
    return -EINVAL;
  if ((err = eddy__coro_check(co)) != 0) {
    eddy_deferred_free(d);
    return err;
  }
  /* A fired d runs the pair now, inside the add. */
  if ((err = eddy_deferred_add_both(d, on_fired, &a)) != 0) {
    eddy_deferred_free(d);
    return err;
  }
  if (!a.fired && (err = eddy__coro_wait(co, abandon, &a)) != 0)
    return err; /* cancelled: abandon() freed d */
  eddy_deferred_free(d);
  return o->code;
}

/* ---- join ---------------------------------------------------------------------- */

static void stop_joining(eddy_deferred *d, void *arg) {
  eddy_coro *co = arg;
  (void)d;
  co->join = NULL;
  eddy_coro_cancel(co);
}

int eddy_coro_join(eddy_coro *co, eddy_deferred **out) {
  int err;
  if (co->join != NULL)
    return -EBUSY;
  err = eddy_deferred_new(co->loop, stop_joining, co, &co->join);
  if (err != 0)
    return err;
  *out = co->join;
  if (co->state == EDDY__CORO_DONE)
    eddy__coro_report(co);
  return 0;
}

void eddy_coro_set_value(eddy_coro *co, void *value,
                         void (*value_free)(void *)) {
  if (co->value_free)
    co->value_free(co->value);
  co->value = value;
  co->value_free = value_free;
}

int eddy_coro_set_detail(eddy_coro *co, const char *detail) {
  size_t len = strlen(detail);
  char *copy = eddy__malloc(len + 1);
  if (copy == NULL)
    return -ENOMEM;
  memcpy(copy, detail, len + 1);
  eddy__free(co->detail);
  co->detail = copy;
  return 0;
}

void eddy__coro_report(eddy_coro *co) {
  eddy_deferred *d = co->join;
  co->join = NULL;
  if (d != NULL) {
    if (co->result >= 0) {
      eddy_deferred_callback(d, co->value, co->value_free);
      co->value = NULL;
      co->value_free = NULL;
    } else if (co->detail) {
      eddy_deferred_errback(d, co->result, "%s", co->detail);
    } else {
      eddy_deferred_errback(d, co->result, NULL);
    }
  }
  if (co->value_free)
    co->value_free(co->value);
  co->value = NULL;
  co->value_free = NULL;
  eddy__free(co->detail);
  co->detail = NULL;
}
