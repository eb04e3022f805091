/* coro_test.h: what the coroutine tests share. */
#ifndef EDDY_TESTS_CORO_TEST_H
#define EDDY_TESTS_CORO_TEST_H

#include "../helpers.h"

/* What a coroutine's done callback saw. */
typedef struct coro_done {
  int calls, result;
} coro_done;

static inline void coro_record_done(eddy_coro *co, int result, void *arg) {
  coro_done *d = arg;
  (void)co;
  d->calls++;
  d->result = result;
}

/* Spawns fn(arg) on loop, its end recorded in *d. */
static inline eddy_coro *coro_start(eddy_loop *loop, eddy_coro_fn fn, void *arg,
                                    coro_done *d) {
  eddy_coro *co = NULL;
  EXPECT_OK(eddy_coro_spawn(loop, fn, arg, NULL, &co));
  eddy_coro_on_done(co, coro_record_done, d);
  return co;
}

#endif
