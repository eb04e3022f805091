/* deferred.c: the Deferred, Twisted's result-to-come, and its chain.
 *
 * One struct per Deferred: the current result, the pairs (four inline, so
 * the common short chain allocates nothing past the Deferred itself), the
 * Deferred it is paused on, the timeout's timer, and a waiter for the
 * consumer inside eddy that owns it (a paused outer Deferred, a
 * combinator).
 *
 * The chain runs in run(): a loop that takes the next pair, or, when the
 * Deferred is paused on an inner one that has finished, takes that one's
 * result. A pass runs to the end of the pairs or until it pauses; pairs
 * added during a pass join it; a second entry (a callback firing something
 * that resumes this very Deferred) returns at once and the outer pass
 * picks the work up. Nesting costs one level of C stack per paused
 * Deferred when the innermost fires, never one per pair.
 *
 * Memory: `busy` counts the frames that still need the struct (a pass, a
 * canceller, a free in progress); eddy_deferred_free marks it FREED and
 * the last frame out releases it. That is what makes free safe from any
 * callback.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "async/async.h"
#include "sys/alloc.h"

#define INLINE_PAIRS 4

enum {
  CALLED = 1u << 0,      /* fired (a cancellation included) */
  RUNNING = 1u << 1,     /* a pass of run() is on the stack */
  FREED = 1u << 2,       /* the owner let go; release when idle */
  CANCELLED = 1u << 3,   /* cancelled before firing */
  TIMING_OUT = 1u << 4,  /* the cancel comes from the timeout */
  FREE_CANCEL = 1u << 5, /* the cancel comes from the free: not reported */
  OWNED = 1u << 6,       /* a waiter inside eddy owns it */
};

typedef struct pair {
  eddy_deferred_cb cb, eb;
  void *arg;
} pair;

struct eddy_deferred {
  eddy_loop *loop;
  eddy_deferred_canceller canceller;
  void *canceller_arg;
  eddy_outcome result;
  pair *pairs; /* inline_pairs, or the heap once there are more */
  size_t npairs, cap, next;
  eddy_deferred *inner; /* paused on it; owned */
  eddy__deferred_waiter waiter;
  void *waiter_arg;
  size_t tag;
  unsigned flags;
  unsigned busy;
  int64_t timeout_ns;
  eddy__timer timer;
  pair inline_pairs[INLINE_PAIRS];
};

static eddy_deferred_unhandled_fn unhandled_fn;
static void *unhandled_arg;

static void run(eddy_deferred *d);
static void timed_out(eddy__timer *t, void *arg);

/* ---- Details and outcomes ------------------------------------------------ */

char *eddy__vformat(const char *fmt, va_list ap) {
  va_list again;
  char *s;
  int len;
  if (fmt == NULL)
    return NULL;
  va_copy(again, ap);
  len = vsnprintf(NULL, 0, fmt, again);
  va_end(again);
  if (len < 0)
    return NULL;
  s = eddy__malloc((size_t)len + 1);
  if (s != NULL)
    vsnprintf(s, (size_t)len + 1, fmt, ap);
  return s;
}

char *eddy__format(const char *fmt, ...) {
  va_list ap;
  char *s;
  va_start(ap, fmt);
  s = eddy__vformat(fmt, ap);
  va_end(ap);
  return s;
}

void eddy_outcome_clear(eddy_outcome *o) {
  if (o->value != NULL && o->value_free != NULL)
    o->value_free(o->value);
  if (o->payload != NULL && o->payload_free != NULL)
    o->payload_free(o->payload);
  eddy__free(o->detail);
  memset(o, 0, sizeof *o);
}

const char *eddy_outcome_detail(const eddy_outcome *o) {
  if (o->code == 0)
    return "";
  return o->detail ? o->detail : eddy_strerror(o->code);
}

void eddy_outcome_list_free(void *list) {
  eddy_outcome_list *l = list;
  if (l == NULL)
    return;
  for (size_t i = 0; i < l->count; i++)
    eddy_outcome_clear(&l->items[i]);
  eddy__free(l->items);
  eddy__free(l);
}

static int error_code(int code) {
  return code < 0 ? code : -EINVAL;
}

/* ---- Life ----------------------------------------------------------------- */

int eddy_deferred_new(eddy_loop *loop, eddy_deferred_canceller canceller,
                      void *arg, eddy_deferred **out) {
  eddy_deferred *d;
  if (loop == NULL || out == NULL)
    return -EINVAL;
  d = eddy__calloc(1, sizeof *d);
  if (d == NULL)
    return -ENOMEM;
  d->loop = loop;
  d->canceller = canceller;
  d->canceller_arg = arg;
  d->pairs = d->inline_pairs;
  d->cap = INLINE_PAIRS;
  eddy__timer_init(loop, &d->timer, timed_out, d);
  *out = d;
  return 0;
}

static void report_unhandled(eddy_deferred *d) {
  char *msg;
  const char *detail = eddy_outcome_detail(&d->result);
  if (unhandled_fn == NULL)
    return;
  msg = eddy__format("Unhandled error in Deferred: %s", detail);
  unhandled_fn(d->result.code,
               msg ? msg : "Unhandled error in Deferred (no memory for it)",
               unhandled_arg);
  eddy__free(msg);
}

static void release(eddy_deferred *d) {
  if (d->inner) { /* still paused: an inner chain that paused again */
    eddy_deferred *inner = d->inner;
    d->inner = NULL;
    eddy__deferred_discard(inner);
  }
  if (d->result.code != 0 && !(d->flags & FREE_CANCEL))
    report_unhandled(d);
  eddy__timer_stop(&d->timer);
  eddy_outcome_clear(&d->result);
  if (d->pairs != d->inline_pairs)
    eddy__free(d->pairs);
  eddy__free(d);
}

/* Releases d if its owner has let go and no frame still uses it. */
static void settle(eddy_deferred *d) {
  if ((d->flags & FREED) && d->busy == 0)
    release(d);
}

void eddy_deferred_free(eddy_deferred *d) {
  if (d == NULL || (d->flags & FREED))
    return;
  d->busy++;
  if (!(d->flags & CALLED) || d->inner) {
    d->flags |= FREE_CANCEL;
    eddy_deferred_cancel(d);
  }
  d->flags |= FREED;
  d->busy--;
  settle(d);
}

eddy_loop *eddy_deferred_loop(const eddy_deferred *d) {
  return d->loop;
}

void eddy_deferred_set_unhandled_hook(eddy_deferred_unhandled_fn fn,
                                      void *arg) {
  unhandled_fn = fn;
  unhandled_arg = arg;
}

/* ---- Running the chain ------------------------------------------------------ */

/* 1 when inner has fired and run its chain to the end. */
static int finished(const eddy_deferred *d) {
  return (d->flags & CALLED) && !(d->flags & RUNNING) && d->inner == NULL &&
         d->next >= d->npairs;
}

/* The paused-on Deferred finished: its result becomes d's. */
static void take_inner(eddy_deferred *d) {
  eddy_deferred *inner = d->inner;
  eddy_outcome_clear(&d->result); /* NULL unless set while paused */
  d->result = inner->result;
  memset(&inner->result, 0, sizeof inner->result);
  d->inner = NULL;
  inner->waiter = NULL;
  eddy_deferred_free(inner);
}

static void run(eddy_deferred *d) {
  if (!(d->flags & CALLED) || (d->flags & RUNNING))
    return;
  d->flags |= RUNNING;
  d->busy++;
  for (;;) {
    pair p;
    eddy_deferred_cb fn;
    if (d->inner) {
      if (!finished(d->inner))
        break; /* paused; the inner one's waiter resumes us */
      take_inner(d);
      continue;
    }
    if (d->next >= d->npairs)
      break;
    p = d->pairs[d->next++]; /* a copy: fn may add pairs and move them */
    fn = d->result.code ? p.eb : p.cb;
    if (fn)
      fn(d, p.arg);
  }
  d->flags &= ~RUNNING;
  if (d->inner == NULL) {
    d->next = d->npairs = 0; /* the storage is reused by later pairs */
    if (d->waiter && !(d->flags & FREED))
      d->waiter(d, d->waiter_arg);
  }
  d->busy--;
  settle(d);
}

/* The outer Deferred's waiter on its inner one. */
static void resume_outer(eddy_deferred *inner, void *arg) {
  (void)inner;
  run(arg);
}

void eddy__deferred_wait(eddy_deferred *d, eddy__deferred_waiter fn, void *arg,
                         size_t tag) {
  d->waiter = fn;
  d->waiter_arg = arg;
  d->tag = tag;
  d->flags |= OWNED;
  run(d);
}

void eddy__deferred_discard(eddy_deferred *d) {
  d->waiter = NULL;
  d->flags |= FREE_CANCEL;
  eddy_deferred_free(d);
}

size_t eddy__deferred_tag(const eddy_deferred *d) {
  return d->tag;
}

/* ---- Firing ---------------------------------------------------------------- */

static int fire(eddy_deferred *d, eddy_outcome *o) {
  if (d->flags & CALLED) {
    eddy_outcome_clear(o);
    return (d->flags & CANCELLED) ? -ECANCELED : -EALREADY;
  }
  d->flags |= CALLED;
  d->canceller = NULL;
  eddy__timer_stop(&d->timer);
  if ((d->flags & TIMING_OUT) && o->code == -ECANCELED)
    o->code = -ETIMEDOUT;
  eddy_outcome_clear(&d->result);
  d->result = *o;
  memset(o, 0, sizeof *o);
  run(d);
  return 0;
}

int eddy_deferred_fire(eddy_deferred *d, eddy_outcome *o) {
  if (o->code > 0)
    o->code = -EINVAL;
  return fire(d, o);
}

int eddy_deferred_callback(eddy_deferred *d, void *value,
                           void (*value_free)(void *)) {
  eddy_outcome o = {.value = value, .value_free = value_free};
  return fire(d, &o);
}

static int errback_v(eddy_deferred *d, int code, void *payload,
                     void (*payload_free)(void *), const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));
static int errback_v(eddy_deferred *d, int code, void *payload,
                     void (*payload_free)(void *), const char *fmt,
                     va_list ap) {
  eddy_outcome o = {.code = error_code(code),
                    .payload = payload,
                    .payload_free = payload_free};
  if (d->flags & CALLED) { /* no need to format what will be dropped */
    eddy_outcome_clear(&o);
    return (d->flags & CANCELLED) ? -ECANCELED : -EALREADY;
  }
  o.detail = eddy__vformat(fmt, ap);
  return fire(d, &o);
}

int eddy_deferred_errback(eddy_deferred *d, int code, const char *fmt, ...) {
  va_list ap;
  int r;
  va_start(ap, fmt);
  r = errback_v(d, code, NULL, NULL, fmt, ap);
  va_end(ap);
  return r;
}

int eddy_deferred_errback_payload(eddy_deferred *d, int code, void *payload,
                                  void (*payload_free)(void *), const char *fmt,
                                  ...) {
  va_list ap;
  int r;
  va_start(ap, fmt);
  r = errback_v(d, code, payload, payload_free, fmt, ap);
  va_end(ap);
  return r;
}

int eddy_deferred_succeed(eddy_loop *loop, void *value,
                          void (*value_free)(void *), eddy_deferred **out) {
  int err = eddy_deferred_new(loop, NULL, NULL, out);
  if (err) {
    if (value != NULL && value_free != NULL)
      value_free(value);
    return err;
  }
  return eddy_deferred_callback(*out, value, value_free);
}

int eddy_deferred_fail(eddy_loop *loop, eddy_deferred **out, int code,
                       const char *fmt, ...) {
  va_list ap;
  int err = eddy_deferred_new(loop, NULL, NULL, out);
  if (err)
    return err;
  va_start(ap, fmt);
  err = errback_v(*out, code, NULL, NULL, fmt, ap);
  va_end(ap);
  return err;
}

int eddy_deferred_called(const eddy_deferred *d) {
  return (d->flags & CALLED) != 0;
}

int eddy_deferred_paused(const eddy_deferred *d) {
  return d->inner != NULL;
}

/* ---- Adding pairs -------------------------------------------------------------- */

static int grow(eddy_deferred *d) {
  size_t cap = d->cap * 2;
  pair *p;
  if (d->pairs == d->inline_pairs) {
    p = eddy__malloc(cap * sizeof *p);
    if (p != NULL)
      memcpy(p, d->pairs, d->npairs * sizeof *p);
  } else {
    p = eddy__realloc(d->pairs, cap * sizeof *p);
  }
  if (p == NULL)
    return -ENOMEM;
  d->pairs = p;
  d->cap = cap;
  return 0;
}

int eddy_deferred_add_callbacks(eddy_deferred *d, eddy_deferred_cb callback,
                                eddy_deferred_cb errback, void *arg) {
  if (callback == NULL && errback == NULL)
    return -EINVAL;
  if (d->npairs == d->cap && grow(d) != 0)
    return -ENOMEM;
  d->pairs[d->npairs++] = (pair){callback, errback, arg};
  run(d); /* runs only if fired, idle and not paused */
  return 0;
}

int eddy_deferred_add_callback(eddy_deferred *d, eddy_deferred_cb cb,
                               void *arg) {
  return cb ? eddy_deferred_add_callbacks(d, cb, NULL, arg) : -EINVAL;
}

int eddy_deferred_add_errback(eddy_deferred *d, eddy_deferred_cb eb,
                              void *arg) {
  return eb ? eddy_deferred_add_callbacks(d, NULL, eb, arg) : -EINVAL;
}

int eddy_deferred_add_both(eddy_deferred *d, eddy_deferred_cb fn, void *arg) {
  return eddy_deferred_add_callbacks(d, fn, fn, arg);
}

/* ---- The current result -------------------------------------------------------- */

int eddy_deferred_error(const eddy_deferred *d) {
  return d->result.code;
}

const char *eddy_deferred_detail(const eddy_deferred *d) {
  return d->result.code ? eddy_outcome_detail(&d->result) : NULL;
}

void *eddy_deferred_payload(const eddy_deferred *d) {
  return d->result.code ? d->result.payload : NULL;
}

void *eddy_deferred_value(const eddy_deferred *d) {
  return d->result.code ? NULL : d->result.value;
}

void *eddy_deferred_take_value(eddy_deferred *d) {
  void *v;
  if (d->result.code)
    return NULL;
  v = d->result.value;
  d->result.value = NULL;
  d->result.value_free = NULL;
  return v;
}

void eddy_deferred_take_outcome(eddy_deferred *d, eddy_outcome *o) {
  *o = d->result;
  memset(&d->result, 0, sizeof d->result);
}

void eddy_deferred_set_value(eddy_deferred *d, void *value,
                             void (*value_free)(void *)) {
  eddy_outcome_clear(&d->result);
  d->result.value = value;
  d->result.value_free = value_free;
}

static int set_error_v(eddy_deferred *d, int code, void *payload,
                       void (*payload_free)(void *), const char *fmt,
                       va_list ap) __attribute__((format(printf, 5, 0)));
static int set_error_v(eddy_deferred *d, int code, void *payload,
                       void (*payload_free)(void *), const char *fmt,
                       va_list ap) {
  char *detail = eddy__vformat(fmt, ap); /* may print the old detail */
  eddy_outcome_clear(&d->result);
  d->result.code = error_code(code);
  d->result.detail = detail;
  d->result.payload = payload;
  d->result.payload_free = payload_free;
  return d->result.code;
}

int eddy_deferred_set_error(eddy_deferred *d, int code, const char *fmt, ...) {
  va_list ap;
  int r;
  va_start(ap, fmt);
  r = set_error_v(d, code, NULL, NULL, fmt, ap);
  va_end(ap);
  return r;
}

int eddy_deferred_set_error_payload(eddy_deferred *d, int code, void *payload,
                                    void (*payload_free)(void *),
                                    const char *fmt, ...) {
  va_list ap;
  int r;
  va_start(ap, fmt);
  r = set_error_v(d, code, payload, payload_free, fmt, ap);
  va_end(ap);
  return r;
}

int eddy_deferred_wrap_error(eddy_deferred *d, const char *fmt, ...) {
  va_list ap;
  char *context, *detail;
  if (d->result.code == 0)
    return 0;
  va_start(ap, fmt);
  context = eddy__vformat(fmt, ap);
  va_end(ap);
  if (context == NULL)
    return d->result.code; /* short of memory: the old detail stays */
  detail = eddy__format("%s: %s", context, eddy_outcome_detail(&d->result));
  eddy__free(context);
  if (detail != NULL) {
    eddy__free(d->result.detail);
    d->result.detail = detail;
  }
  return d->result.code;
}

/* Refuses an inner Deferred that would wait, directly or through others,
 * on d: the two would wait for each other forever. */
static int waits_on(const eddy_deferred *inner, const eddy_deferred *d) {
  for (const eddy_deferred *x = inner; x != NULL; x = x->inner)
    if (x == d)
      return 1;
  return 0;
}

int eddy_deferred_chain(eddy_deferred *d, eddy_deferred *inner) {
  if (inner == NULL)
    return -EINVAL;
  if (inner == d || !(d->flags & RUNNING) || d->inner != NULL ||
      (inner->flags & (OWNED | FREED)) || waits_on(inner, d)) {
    if (inner != d && !(inner->flags & OWNED))
      eddy_deferred_free(inner);
    return -EINVAL;
  }
  eddy_outcome_clear(&d->result);
  d->inner = inner;
  inner->waiter = resume_outer;
  inner->waiter_arg = d;
  inner->flags |= OWNED;
  return 0; /* run() takes it from here when the callback returns */
}

/* ---- Cancellation and timeouts ---------------------------------------------------- */

void eddy_deferred_cancel(eddy_deferred *d) {
  eddy_deferred_canceller canceller;
  if (d == NULL)
    return;
  if (d->flags & CALLED) {
    if (d->inner)
      eddy_deferred_cancel(d->inner);
    return;
  }
  if (d->flags & CANCELLED)
    return; /* from inside its own canceller */
  d->flags |= CANCELLED;
  d->busy++;
  canceller = d->canceller;
  d->canceller = NULL;
  if (canceller)
    canceller(d, d->canceller_arg);
  if (!(d->flags & CALLED)) {
    char reason[64];
    eddy_outcome o = {.code = -ECANCELED};
    o.detail = eddy__format("%s", eddy__deferred_cancel_reason(d, reason,
                                                               sizeof reason));
    fire(d, &o);
  }
  d->busy--;
  settle(d);
}

const char *eddy__deferred_cancel_reason(const eddy_deferred *d, char *buf,
                                         size_t len) {
  if (!(d->flags & TIMING_OUT))
    return "cancelled";
  snprintf(buf, len, "timed out after %lld ms",
           (long long)(d->timeout_ns / EDDY_NSEC_PER_MSEC));
  return buf;
}

static void timed_out(eddy__timer *t, void *arg) {
  eddy_deferred *d = arg;
  (void)t;
  d->flags |= TIMING_OUT;
  eddy_deferred_cancel(d);
}

int eddy_deferred_set_timeout(eddy_deferred *d, int64_t timeout_ns) {
  if (d->flags & CALLED)
    return -EALREADY;
  if (timeout_ns < 0) {
    eddy__timer_stop(&d->timer);
    return 0;
  }
  d->timeout_ns = timeout_ns;
  return eddy__timer_start(&d->timer, timeout_ns);
}
