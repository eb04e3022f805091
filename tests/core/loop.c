/* The loop: creation, backends, run modes, stop, call-soon, handles, and
 * the rules for freeing. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helpers.h"

Test(loop, runs_until_idle_with_nothing_to_do_and_frees) {
  eddy_loop *loop = test_loop();
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_ONCE), 0); /* does not block */
  test_finish(loop);
}

Test(loop, backend_follows_options_then_environment) {
  eddy_loop *loop;
  eddy_loop_options o = {.backend = EDDY_BACKEND_POLL};
  EXPECT_OK(eddy_loop_new(&o, &loop));
  EXPECT_STR(eddy_loop_backend_name(loop), "poll");
  EXPECT_OK(eddy_loop_free(loop));
  o.backend = EDDY_BACKEND_EPOLL;
  EXPECT_OK(eddy_loop_new(&o, &loop));
  EXPECT_STR(eddy_loop_backend_name(loop), "epoll");
  EXPECT_OK(eddy_loop_free(loop));
  setenv("EDDY_BACKEND", "poll", 1);
  EXPECT_OK(eddy_loop_new(NULL, &loop));
  EXPECT_STR(eddy_loop_backend_name(loop), "poll");
  EXPECT_OK(eddy_loop_free(loop));
  setenv("EDDY_BACKEND", "", 1);
  EXPECT_OK(eddy_loop_new(NULL, &loop));
  EXPECT_STR(eddy_loop_backend_name(loop), "epoll");
  EXPECT_OK(eddy_loop_free(loop));
  EXPECT_EQ(eddy__alloc_live(), 0);
}

Test(loop, unknown_backend_is_a_clear_error) {
  eddy_loop *loop = NULL;
  eddy_loop_options o = {.backend = (eddy_backend)42};
  setenv("EDDY_BACKEND", "kqueue-on-linux", 1);
  EXPECT_EQ(eddy_loop_new(NULL, &loop), EDDY_EBACKEND);
  EXPECT_EQ(eddy_loop_new(&o, &loop), EDDY_EBACKEND);
  EXPECT_EQ(loop, 0);
  EXPECT_STR(eddy_errname(EDDY_EBACKEND), "EDDY_EBACKEND");
  EXPECT_EQ(eddy__alloc_live(), 0);
}

typedef struct soon_ctx {
  eddy_loop *loop;
  int order[16];
  int n;
  int requeue; /* times to queue itself again */
  int stop_at;
} soon_ctx;

static void soon_a(eddy_loop *loop, void *arg) {
  soon_ctx *c = arg;
  (void)loop;
  c->order[c->n++] = 1;
}

static void soon_b(eddy_loop *loop, void *arg) {
  soon_ctx *c = arg;
  c->order[c->n++] = 2;
  if (c->requeue-- > 0)
    EXPECT_OK(eddy_loop_call_soon(loop, soon_b, c));
}

Test(loop, call_soon_runs_in_order_and_calls_queued_by_callbacks_wait_a_turn) {
  eddy_loop *loop = test_loop();
  soon_ctx c = {.requeue = 2};
  EXPECT_OK(eddy_loop_call_soon(loop, soon_a, &c));
  EXPECT_OK(eddy_loop_call_soon(loop, soon_b, &c));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 1); /* b queued again */
  EXPECT_EQ(c.n, 2);
  EXPECT_EQ(c.order[0], 1);
  EXPECT_EQ(c.order[1], 2);
  EXPECT_EQ(eddy_loop_next_timeout(loop), 0);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(c.n, 4);
  test_finish(loop);
}

Test(loop, call_soon_allocation_failure_returns_enomem) {
  eddy_loop *loop = test_loop();
  soon_ctx c = {0};
  eddy__fault_fail_nth(EDDY__SYS_MALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy_loop_call_soon(loop, soon_a, &c), -ENOMEM);
  EXPECT_OK(eddy_loop_call_soon(loop, soon_a, &c));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(c.n, 1);
  test_finish(loop);
}

static void stopper(eddy_timer *t, void *arg) {
  int *fired = arg;
  (*fired)++;
  eddy_loop_stop(eddy_timer_loop(t));
}

Test(loop, stop_ends_run_until_stopped_after_the_turn) {
  eddy_loop *loop = test_loop();
  eddy_timer *t, *other;
  int fired = 0, other_fired = 0;
  EXPECT_OK(eddy_timer_new(loop, stopper, &fired, &t));
  EXPECT_OK(eddy_timer_new(loop, stopper, &other_fired, &other));
  EXPECT_OK(eddy_timer_start(t, EDDY_NSEC_PER_MSEC, EDDY_NSEC_PER_MSEC));
  EXPECT_OK(eddy_timer_start(other, EDDY_NSEC_PER_SEC * 60, 0));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_STOPPED), 1);
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 1); /* stop again */
  EXPECT_EQ(fired, 2);
  EXPECT_EQ(other_fired, 0);
  test_finish(loop);
}

Test(loop, run_once_waits_for_the_next_timer_and_fires_it) {
  eddy_loop *loop = test_loop();
  eddy_timer *t;
  int fired = 0;
  EXPECT_OK(eddy_timer_new(loop, stopper, &fired, &t));
  EXPECT_OK(eddy_timer_start(t, 5 * EDDY_NSEC_PER_MSEC, 0));
  EXPECT_GT(eddy_loop_next_timeout(loop), 0);
  EXPECT_LE(eddy_loop_next_timeout(loop), 5 * EDDY_NSEC_PER_MSEC);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_ONCE), 0);
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(eddy_loop_next_timeout(loop), -1);
  test_finish(loop);
}

static void nested_run(eddy_loop *loop, void *arg) {
  int *result = arg;
  *result = eddy_loop_run(loop, EDDY_RUN_NOWAIT);
}

Test(loop, run_from_a_callback_is_refused) {
  eddy_loop *loop = test_loop();
  int result = 0;
  EXPECT_OK(eddy_loop_call_soon(loop, nested_run, &result));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(result, -EBUSY);
  test_finish(loop);
}

static void free_inside(eddy_loop *loop, void *arg) {
  int *result = arg;
  *result = eddy_loop_free(loop);
}

Test(loop, free_refuses_while_handles_are_open_or_running) {
  eddy_loop *loop = test_loop();
  eddy_timer *t;
  int result = 0;
  EXPECT_OK(eddy_timer_new(loop, stopper, NULL, &t));
  EXPECT_EQ(eddy_loop_free(loop), -EBUSY);
  eddy_timer_close(t);
  EXPECT_OK(eddy_loop_call_soon(loop, free_inside, &result));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(result, -EBUSY);
  test_finish(loop);
}

Test(loop, free_drops_queued_calls_and_frees_closed_handles) {
  eddy_loop *loop = test_loop();
  eddy_timer *t;
  soon_ctx c = {0};
  EXPECT_OK(eddy_timer_new(loop, stopper, NULL, &t));
  EXPECT_OK(eddy_timer_start(t, EDDY_NSEC_PER_SEC, 0));
  eddy_timer_close(t); /* closed, never run: freed by eddy_loop_free */
  EXPECT_OK(eddy_loop_call_soon(loop, soon_a, &c));
  EXPECT_OK(eddy_loop_call_threadsafe(loop, soon_a, &c));
  EXPECT_OK(eddy_loop_free(loop));
  EXPECT_EQ(c.n, 0);
  EXPECT_EQ(eddy__alloc_live(), 0);
}

Test(loop, close_all_closes_every_open_handle) {
  eddy_loop *loop = test_loop();
  eddy_timer *t[10];
  for (int i = 0; i < 10; i++) {
    EXPECT_OK(eddy_timer_new(loop, stopper, NULL, &t[i]));
    EXPECT_OK(eddy_timer_start(t[i], EDDY_NSEC_PER_SEC, 0));
  }
  eddy_timer_close(t[3]);
  eddy_loop_close_all(loop);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_OK(eddy_loop_free(loop));
  EXPECT_EQ(eddy__alloc_live(), 0);
}

Test(loop, time_is_cached_per_turn_and_monotonic) {
  eddy_loop *loop = test_loop();
  int64_t a = eddy_loop_now(loop), b;
  struct timespec ts = {0, 2000000};
  nanosleep(&ts, NULL);
  EXPECT_EQ(eddy_loop_now(loop), a); /* cached */
  eddy_loop_update_time(loop);
  b = eddy_loop_now(loop);
  EXPECT_GE(b - a, 2000000);
  eddy__fault_fail_after(EDDY__SYS_CLOCK_GETTIME, 1, EINVAL);
  eddy_loop_update_time(loop); /* a failing clock never goes back */
  EXPECT_GE(eddy_loop_now(loop), b);
  eddy__fault_reset();
  test_finish(loop);
}

Test(loop, fake_clock_starts_where_asked_and_never_moves_alone) {
  eddy_loop *loop = test_fake_loop(12345);
  EXPECT_EQ(eddy_loop_now(loop), 12345);
  eddy_loop_update_time(loop);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(eddy_loop_now(loop), 12345);
  test_finish(loop);
}

Test(loop, fake_clock_timers_do_not_make_the_loop_wait) {
  eddy_loop *loop = test_fake_loop(0);
  eddy_timer *t;
  int fired = 0;
  EXPECT_OK(eddy_timer_new(loop, stopper, &fired, &t));
  EXPECT_OK(eddy_timer_start(t, EDDY_NSEC_PER_SEC * 3600, 0));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0); /* at once */
  EXPECT_EQ(eddy_loop_next_timeout(loop), -1);
  EXPECT_EQ(fired, 0);
  EXPECT_OK(eddy_loop_advance(loop, EDDY_NSEC_PER_SEC * 3600));
  EXPECT_EQ(fired, 1);
  test_finish(loop);
}
