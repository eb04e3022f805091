/* coro_await.c: coroutines and Deferreds together: awaiting one (fired
 * later, fired already, failed, cancelled while awaited) and a
 * coroutine's result as one (eddy_coro_join). */
#include "coro_test.h"

typedef struct awaiter {
  eddy_deferred *d; /* handed to the coroutine */
  int result;
  eddy_outcome o;
  int returned;
  int cancels; /* the Deferred's canceller ran */
  int frees;   /* values freed */
} awaiter;

static int await_it(eddy_coro *co, void *arg) {
  awaiter *a = arg;
  a->result = eddy_coro_await(co, a->d, &a->o);
  a->returned = 1;
  return a->result;
}

static void count_cancel(eddy_deferred *d, void *arg) {
  (void)d;
  ((awaiter *)arg)->cancels++;
}

static awaiter *freed_counter;

static void count_free(void *value) {
  (void)value;
  freed_counter->frees++;
}

Test(coro_await, await_returns_the_value_fired_later) {
  eddy_loop *loop = test_loop();
  awaiter a = {0};
  coro_done d = {0};
  static int value = 42;
  EXPECT_OK(eddy_deferred_new(loop, count_cancel, &a, &a.d));
  eddy_deferred *d0 = a.d;
  coro_start(loop, await_it, &a, &d);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(a.returned, 0);
  EXPECT_OK(eddy_deferred_callback(d0, &value, NULL));
  EXPECT_EQ(a.returned, 1); /* resumed from inside the chain */
  EXPECT_EQ(a.result, 0);
  EXPECT_EQ(a.o.value, &value);
  EXPECT_EQ(a.cancels, 0);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  eddy_outcome_clear(&a.o);
  test_finish(loop);
}

Test(coro_await, await_of_a_fired_deferred_returns_at_once) {
  eddy_loop *loop = test_loop();
  awaiter a = {0};
  coro_done d = {0};
  static int value = 7;
  EXPECT_OK(eddy_deferred_new(loop, NULL, NULL, &a.d));
  EXPECT_OK(eddy_deferred_callback(a.d, &value, NULL));
  coro_start(loop, await_it, &a, &d);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(a.result, 0);
  EXPECT_EQ(a.o.value, &value);
  eddy_outcome_clear(&a.o);
  test_finish(loop);
}

Test(coro_await, await_returns_the_error_with_its_detail) {
  eddy_loop *loop = test_loop();
  awaiter a = {0};
  coro_done d = {0};
  EXPECT_OK(eddy_deferred_new(loop, NULL, NULL, &a.d));
  eddy_deferred *d0 = a.d;
  coro_start(loop, await_it, &a, &d);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_OK(eddy_deferred_errback(d0, -ECONNREFUSED,
                                  "connect to example.test:80: %s",
                                  "connection refused"));
  EXPECT_EQ(a.result, -ECONNREFUSED);
  EXPECT_STR(eddy_outcome_detail(&a.o),
             "connect to example.test:80: connection refused");
  EXPECT_EQ(d.result, -ECONNREFUSED);
  eddy_outcome_clear(&a.o);
  test_finish(loop);
}

static void fire_with_owned_value(eddy_deferred *d, void *arg) {
  (void)arg;
  /* A canceller that fires with a value the chain must free. */
  eddy_deferred_callback(d, freed_counter, count_free);
}

Test(coro_await, cancel_while_blocked_in_await_cancels_the_deferred) {
  eddy_loop *loop = test_loop();
  awaiter a = {0};
  coro_done d = {0};
  EXPECT_OK(eddy_deferred_new(loop, count_cancel, &a, &a.d));
  eddy_coro *co = coro_start(loop, await_it, &a, &d);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  eddy_coro_cancel(co);
  EXPECT_EQ(a.cancels, 1); /* the Deferred is cancelled at once */
  EXPECT_EQ(a.returned, 0);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(a.result, -ECANCELED);
  EXPECT_EQ(a.o.code, 0);
  EXPECT_EQ(a.o.value, NULL);
  test_finish(loop);
}

Test(coro_await, a_value_made_as_the_await_is_cancelled_is_freed) {
  eddy_loop *loop = test_loop();
  awaiter a = {0};
  coro_done d = {0};
  freed_counter = &a;
  EXPECT_OK(eddy_deferred_new(loop, fire_with_owned_value, NULL, &a.d));
  eddy_coro *co = coro_start(loop, await_it, &a, &d);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  eddy_coro_cancel(co);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(a.result, -ECANCELED);
  EXPECT_EQ(a.frees, 1);
  test_finish(loop);
}

static int sleep_via_deferred(eddy_coro *co, void *arg) {
  awaiter *a = arg;
  eddy_deferred *d;
  EXPECT_OK(eddy_deferred_sleep(eddy_coro_loop(co), 2 * EDDY_NSEC_PER_SEC, &d));
  a->result = eddy_coro_await(co, d, &a->o);
  a->returned = 1;
  return 0;
}

Test(coro_await, await_a_deferred_sleep_on_the_fake_clock) {
  eddy_loop *loop = test_fake_loop(0);
  awaiter a = {0};
  coro_done d = {0};
  coro_start(loop, sleep_via_deferred, &a, &d);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_OK(eddy_loop_advance(loop, EDDY_NSEC_PER_SEC));
  EXPECT_EQ(a.returned, 0);
  EXPECT_OK(eddy_loop_advance(loop, EDDY_NSEC_PER_SEC));
  EXPECT_EQ(a.returned, 1);
  EXPECT_EQ(a.result, 0);
  eddy_outcome_clear(&a.o);
  test_finish(loop);
}

/* ---- join ------------------------------------------------------------------------ */

static int returns_a_value(eddy_coro *co, void *arg) {
  static int answer = 42;
  (void)arg;
  EXPECT_OK(eddy_coro_yield(co));
  eddy_coro_set_value(co, &answer, NULL);
  return 0;
}

static int fails_with_detail(eddy_coro *co, void *arg) {
  (void)arg;
  EXPECT_OK(eddy_coro_set_detail(co, "fetch /index.html: connection refused"));
  return -ECONNREFUSED;
}

typedef struct joined {
  int calls, code;
  void *value;
  char detail[128];
} joined;

static void on_joined(eddy_deferred *d, void *arg) {
  joined *j = arg;
  j->calls++;
  j->code = eddy_deferred_error(d);
  if (j->code == 0) {
    j->value = eddy_deferred_value(d);
  } else {
    snprintf(j->detail, sizeof j->detail, "%s", eddy_deferred_detail(d));
    eddy_deferred_set_value(d, NULL, NULL); /* handled */
  }
}

Test(coro_await, join_fires_with_the_value_the_coroutine_set) {
  eddy_loop *loop = test_loop();
  eddy_coro *co;
  eddy_deferred *d;
  joined j = {0};
  EXPECT_OK(eddy_coro_spawn(loop, returns_a_value, NULL, NULL, &co));
  EXPECT_OK(eddy_coro_join(co, &d));
  EXPECT_EQ(eddy_coro_join(co, &d), -EBUSY);
  EXPECT_OK(eddy_deferred_add_both(d, on_joined, &j));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(j.calls, 1);
  EXPECT_EQ(j.code, 0);
  EXPECT_EQ(*(int *)j.value, 42);
  eddy_deferred_free(d);
  test_finish(loop);
}

Test(coro_await, join_fails_with_the_coroutines_code_and_detail) {
  eddy_loop *loop = test_loop();
  eddy_coro *co;
  eddy_deferred *d;
  joined j = {0};
  EXPECT_OK(eddy_coro_spawn(loop, fails_with_detail, NULL, NULL, &co));
  EXPECT_OK(eddy_coro_join(co, &d));
  EXPECT_OK(eddy_deferred_add_both(d, on_joined, &j));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(j.code, -ECONNREFUSED);
  EXPECT_STR(j.detail, "fetch /index.html: connection refused");
  eddy_deferred_free(d);
  test_finish(loop);
}

static int sleeps_long(eddy_coro *co, void *arg) {
  int *result = arg;
  *result = eddy_coro_sleep(co, 3600 * EDDY_NSEC_PER_SEC);
  return *result;
}

Test(coro_await, cancelling_the_join_deferred_cancels_the_coroutine) {
  eddy_loop *loop = test_fake_loop(0);
  eddy_coro *co;
  eddy_deferred *d;
  joined j = {0};
  int result = 1;
  EXPECT_OK(eddy_coro_spawn(loop, sleeps_long, &result, NULL, &co));
  EXPECT_OK(eddy_coro_join(co, &d));
  EXPECT_OK(eddy_deferred_add_both(d, on_joined, &j));
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  eddy_deferred_cancel(d);
  EXPECT_EQ(j.code, -ECANCELED);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(result, -ECANCELED);
  eddy_deferred_free(d);
  test_finish(loop);
}

static int awaits_a_sibling(eddy_coro *co, void *arg) {
  eddy_coro *other;
  eddy_deferred *d;
  eddy_outcome o;
  int *got = arg;
  EXPECT_OK(eddy_coro_spawn_child(co, returns_a_value, NULL, NULL, &other));
  EXPECT_OK(eddy_coro_join(other, &d));
  EXPECT_OK(eddy_coro_await(co, d, &o));
  *got = *(int *)o.value;
  eddy_outcome_clear(&o);
  return 0;
}

Test(coro_await, a_coroutine_awaits_another_through_its_join) {
  eddy_loop *loop = test_loop();
  coro_done d = {0};
  int got = 0;
  coro_start(loop, awaits_a_sibling, &got, &d);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(got, 42);
  EXPECT_EQ(d.result, 0);
  test_finish(loop);
}

Test(coro_await, close_all_while_blocked_in_await_cancels_the_deferred) {
  eddy_loop *loop = test_loop();
  awaiter a = {0};
  coro_done d = {0};
  EXPECT_OK(eddy_deferred_new(loop, count_cancel, &a, &a.d));
  coro_start(loop, await_it, &a, &d);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  test_finish(loop);
  EXPECT_EQ(a.cancels, 1);
  EXPECT_EQ(a.result, -ECANCELED);
}
