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

static inline void coro_tick(eddy_timer *t, void *arg) {
  (void)t;
  (void)arg;
}

/* Runs the loop until *count reaches target or 10 s pass; returns *count.
 * A timer ticking every 10 ms bounds each turn's wait, so a wait that
 * never ends fails the test instead of hanging it. */
static inline int coro_run_until(eddy_loop *loop, const int *count,
                                 int target) {
  eddy_timer *tick;
  int64_t end = test_clock_ms() + 10000;
  EXPECT_OK(eddy_timer_new(loop, coro_tick, NULL, &tick));
  EXPECT_OK(
      eddy_timer_start(tick, 10 * EDDY_NSEC_PER_MSEC, 10 * EDDY_NSEC_PER_MSEC));
  while (*count < target && test_clock_ms() < end)
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_ONCE), 0);
  eddy_timer_close(tick);
  return *count;
}

#endif
