/* async_test.h: what the Deferred tests share: a record of what a chain's
 * callbacks saw, counted values (so a test sees every free), and the
 * unhandled-error hook's log. */
#ifndef EDDY_TESTS_ASYNC_TEST_H
#define EDDY_TESTS_ASYNC_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "helpers.h"

#define MS EDDY_NSEC_PER_MSEC
#define EXPECT_NULL(p) cr_assert(eq(ptr, (void *)(p), NULL))

/* ---- Counted values ----------------------------------------------------------
 *
 * A value is a heap int; value_free counts the frees, so a test proves
 * that each value is freed exactly once. */

static int values_freed;

static inline int *value_new(int n) {
  int *v = malloc(sizeof *v);
  cr_assert(v != NULL);
  *v = n;
  return v;
}

static inline void value_free(void *v) {
  values_freed++;
  free(v);
}

static inline int value_of(eddy_deferred *d) {
  int *v = eddy_deferred_value(d);
  cr_assert(v != NULL, "expected an int value");
  return *v;
}

/* ---- A record of a chain ---------------------------------------------------------- */

typedef struct rec {
  char trail[256]; /* one letter per callback run: the order */
  int values[32];  /* the int value each callback saw, or -1 */
  int n;
  int code; /* the last error code an errback saw */
  char detail[256];
} rec;

static inline void rec_mark(rec *r, char c, int value) {
  size_t len = strlen(r->trail);
  cr_assert(len + 1 < sizeof r->trail);
  r->trail[len] = c;
  r->trail[len + 1] = '\0';
  if (r->n < 32)
    r->values[r->n++] = value;
}

/* A callback that records 'c' and its value, and passes it on. */
static inline void cb_record(eddy_deferred *d, void *arg) {
  int *v = eddy_deferred_value(d);
  rec_mark(arg, 'c', v ? *v : -1);
}

/* An errback that records 'e' and the error, and passes it on. */
static inline void eb_record(eddy_deferred *d, void *arg) {
  rec *r = arg;
  rec_mark(r, 'e', -1);
  r->code = eddy_deferred_error(d);
  snprintf(r->detail, sizeof r->detail, "%s", eddy_deferred_detail(d));
}

/* A callback that adds one to the value, replacing it. */
static inline void cb_add_one(eddy_deferred *d, void *arg) {
  int n = value_of(d);
  rec_mark(arg, '+', n);
  eddy_deferred_set_value(d, value_new(n + 1), value_free);
}

/* An errback that handles the error with the value 100. */
static inline void eb_recover(eddy_deferred *d, void *arg) {
  rec *r = arg;
  rec_mark(r, 'r', -1);
  r->code = eddy_deferred_error(d);
  eddy_deferred_set_value(d, value_new(100), value_free);
}

/* ---- The unhandled-error hook ---------------------------------------------------------- */

typedef struct unhandled_log {
  int count, code;
  char message[256];
} unhandled_log;

static unhandled_log unhandled;

static inline void unhandled_hook(int code, const char *message, void *arg) {
  unhandled_log *l = arg;
  l->count++;
  l->code = code;
  snprintf(l->message, sizeof l->message, "%s", message);
}

/* Every test starts with the hook on and the counters at zero. */
static inline void async_setup(void) {
  values_freed = 0;
  memset(&unhandled, 0, sizeof unhandled);
  eddy_deferred_set_unhandled_hook(unhandled_hook, &unhandled);
}

static inline void async_teardown(void) {
  eddy_deferred_set_unhandled_hook(NULL, NULL);
}

/* A fired Deferred's result, for checks after the chain: its code, its
 * detail copied, and its value (the pointer; an int value copied by
 * watch_int). */
typedef struct result {
  int fired, code, value;
  void *ptr;
  char detail[256];
} result;

static inline void result_record(eddy_deferred *d, result *r) {
  r->fired++;
  r->code = eddy_deferred_error(d);
  r->ptr = eddy_deferred_value(d);
  if (r->code) {
    snprintf(r->detail, sizeof r->detail, "%s", eddy_deferred_detail(d));
    eddy_deferred_set_value(d, NULL, NULL); /* handled */
  }
}

static inline void cb_result(eddy_deferred *d, void *arg) {
  result_record(d, arg);
}

static inline void cb_result_int(eddy_deferred *d, void *arg) {
  result *r = arg;
  result_record(d, r);
  r->value = r->ptr ? *(int *)r->ptr : -1;
}

/* Records the result at the end of d's chain (handling an error). */
static inline void watch_result(eddy_deferred *d, result *r) {
  EXPECT_OK(eddy_deferred_add_both(d, cb_result, r));
}

static inline void watch_int(eddy_deferred *d, result *r) {
  EXPECT_OK(eddy_deferred_add_both(d, cb_result_int, r));
}

#endif
