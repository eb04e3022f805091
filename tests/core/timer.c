/* Timers: order, cancel and re-add from callbacks, reset, delay, repeat,
 * the fake clock, and the limits of the heap. */
#include <stdlib.h>

#include "helpers.h"
#include "core/loop.h"

#define MS EDDY_NSEC_PER_MSEC

typedef struct log {
  int order[64];
  int n;
} log_t;

typedef struct tctx {
  log_t *log;
  int id;
  eddy_timer *other; /* a timer the callback acts on */
  int action;        /* what it does to other */
  int64_t arg;
} tctx;

enum {
  NOTHING,
  CANCEL_OTHER,
  START_OTHER,
  RESET_SELF,
  CLOSE_SELF,
  CLOSE_OTHER
};

static void record(eddy_timer *t, void *arg) {
  tctx *c = arg;
  c->log->order[c->log->n++] = c->id;
  switch (c->action) {
  case CANCEL_OTHER:
    eddy_timer_stop(c->other);
    break;
  case START_OTHER:
    EXPECT_OK(eddy_timer_start(c->other, c->arg, 0));
    break;
  case RESET_SELF:
    c->action = NOTHING;
    EXPECT_OK(eddy_timer_start(t, c->arg, 0));
    break;
  case CLOSE_SELF:
    eddy_timer_close(t);
    break;
  case CLOSE_OTHER:
    eddy_timer_close(c->other);
    break;
  }
}

static eddy_timer *make(eddy_loop *loop, tctx *c, log_t *log, int id) {
  eddy_timer *t;
  c->log = log;
  c->id = id;
  EXPECT_OK(eddy_timer_new(loop, record, c, &t));
  return t;
}

Test(timer, fires_in_deadline_order_with_fake_clock) {
  eddy_loop *loop = test_fake_loop(0);
  log_t log = {0};
  tctx c[5] = {0};
  int64_t delays[5] = {50, 10, 40, 20, 30};
  for (int i = 0; i < 5; i++)
    EXPECT_OK(eddy_timer_start(make(loop, &c[i], &log, i), delays[i] * MS, 0));
  EXPECT_OK(eddy_loop_advance(loop, 25 * MS));
  EXPECT_EQ(log.n, 2);
  EXPECT_EQ(log.order[0], 1);
  EXPECT_EQ(log.order[1], 3);
  EXPECT_OK(eddy_loop_advance(loop, 25 * MS));
  EXPECT_EQ(log.n, 5);
  EXPECT_EQ(log.order[2], 4);
  EXPECT_EQ(log.order[3], 2);
  EXPECT_EQ(log.order[4], 0);
  test_finish(loop);
}

/* A deadline is exact to the nanosecond: a timer that fired a little early
 * (a rounding to milliseconds, a "<" where "<=" belongs) would show here,
 * where a test with round numbers would not notice. Each period of a
 * repeating timer is held to the same edge. */
Test(timer, does_not_fire_one_nanosecond_before_its_deadline_and_fires_at_it) {
  eddy_loop *loop = test_fake_loop(1000);
  log_t log = {0};
  tctx c = {0}, r = {0};
  eddy_timer *once = make(loop, &c, &log, 1);
  eddy_timer *every = make(loop, &r, &log, 2);
  EXPECT_OK(eddy_timer_start(once, 7 * MS, 0));
  EXPECT_OK(eddy_timer_start(every, 3 * MS, 3 * MS));
  EXPECT_OK(eddy_loop_advance(loop, 3 * MS - 1));
  EXPECT_EQ(log.n, 0);
  /* Nor does a turn of the loop at that time (it checks on its own). */
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(log.n, 0);
  EXPECT_OK(eddy_loop_advance(loop, 1));
  EXPECT_EQ(log.n, 1);
  EXPECT_EQ(log.order[0], 2);
  EXPECT_OK(eddy_loop_advance(loop, 3 * MS - 1)); /* 1 ns before 6 ms */
  EXPECT_EQ(log.n, 1);
  EXPECT_OK(eddy_loop_advance(loop, 1));
  EXPECT_EQ(log.n, 2);
  EXPECT_EQ(log.order[1], 2);
  EXPECT_OK(eddy_loop_advance(loop, MS - 1)); /* 1 ns before 7 ms */
  EXPECT_EQ(log.n, 2);
  EXPECT_OK(eddy_loop_advance(loop, 1));
  EXPECT_EQ(log.n, 3);
  EXPECT_EQ(log.order[2], 1);
  EXPECT_EQ(eddy_loop_now(loop), 1000 + 7 * MS);
  test_finish(loop);
}

Test(timer, equal_deadlines_fire_in_start_order) {
  eddy_loop *loop = test_fake_loop(1000);
  log_t log = {0};
  tctx c[20] = {0};
  for (int i = 0; i < 20; i++)
    EXPECT_OK(eddy_timer_start(make(loop, &c[i], &log, i), 7 * MS, 0));
  EXPECT_OK(eddy_loop_advance(loop, 7 * MS));
  EXPECT_EQ(log.n, 20);
  for (int i = 0; i < 20; i++)
    EXPECT_EQ(log.order[i], i);
  test_finish(loop);
}

Test(timer, cancelling_the_next_due_timer_from_a_callback_stops_it) {
  eddy_loop *loop = test_fake_loop(0);
  log_t log = {0};
  tctx a = {0}, b = {0};
  eddy_timer *ta = make(loop, &a, &log, 1), *tb = make(loop, &b, &log, 2);
  a.action = CANCEL_OTHER;
  a.other = tb;
  EXPECT_OK(eddy_timer_start(ta, 10 * MS, 0));
  EXPECT_OK(eddy_timer_start(tb, 10 * MS, 0)); /* due in the same pass */
  EXPECT_OK(eddy_loop_advance(loop, 20 * MS));
  EXPECT_EQ(log.n, 1);
  EXPECT_EQ(eddy_timer_active(tb), 0);
  test_finish(loop);
}

Test(timer, closing_another_due_timer_from_a_callback_is_safe) {
  eddy_loop *loop = test_fake_loop(0);
  log_t log = {0};
  tctx a = {0}, b = {0};
  eddy_timer *ta = make(loop, &a, &log, 1), *tb = make(loop, &b, &log, 2);
  a.action = CLOSE_OTHER;
  a.other = tb;
  EXPECT_OK(eddy_timer_start(ta, 1 * MS, 0));
  EXPECT_OK(eddy_timer_start(tb, 1 * MS, 0));
  EXPECT_OK(eddy_loop_advance(loop, 1 * MS));
  EXPECT_EQ(log.n, 1);
  test_finish(loop);
}

Test(timer,
     a_timer_started_in_a_callback_with_no_delay_waits_for_the_next_pass) {
  eddy_loop *loop = test_loop();
  log_t log = {0};
  tctx a = {0};
  eddy_timer *t = make(loop, &a, &log, 1);
  a.action = RESET_SELF;
  a.arg = 0;
  EXPECT_OK(eddy_timer_start(t, 0, 0));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 1);
  EXPECT_EQ(log.n, 1); /* not twice in one pass */
  EXPECT_EQ(eddy_timer_active(t), 1);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(log.n, 2);
  test_finish(loop);
}

Test(timer, advance_fires_timers_started_by_callbacks_when_due) {
  eddy_loop *loop = test_fake_loop(0);
  log_t log = {0};
  tctx a = {0}, b = {0};
  eddy_timer *ta = make(loop, &a, &log, 1), *tb = make(loop, &b, &log, 2);
  a.action = START_OTHER;
  a.other = tb;
  a.arg = 0;
  EXPECT_OK(eddy_timer_start(ta, 10 * MS, 0));
  EXPECT_OK(eddy_loop_advance(loop, 30 * MS)); /* b due at once */
  EXPECT_EQ(log.n, 2);
  EXPECT_EQ(log.order[1], 2);
  /* Delays count from the advanced time, as in Twisted's Clock. */
  a.arg = 5 * MS;
  EXPECT_OK(eddy_timer_start(ta, 0, 0));
  EXPECT_OK(eddy_loop_advance(loop, 0));
  EXPECT_EQ(eddy_timer_deadline(tb), 35 * MS);
  EXPECT_OK(eddy_loop_advance(loop, 5 * MS));
  EXPECT_EQ(log.n, 4);
  test_finish(loop);
}

Test(timer, reset_moves_the_deadline_from_now) {
  eddy_loop *loop = test_fake_loop(0);
  log_t log = {0};
  tctx a = {0};
  eddy_timer *t = make(loop, &a, &log, 1);
  EXPECT_EQ(eddy_timer_reset(t, MS), -EINVAL); /* not active */
  EXPECT_OK(eddy_timer_start(t, 10 * MS, 0));
  EXPECT_OK(eddy_loop_advance(loop, 8 * MS));
  EXPECT_OK(eddy_timer_reset(t, 10 * MS));
  EXPECT_EQ(eddy_timer_deadline(t), 18 * MS);
  EXPECT_OK(eddy_loop_advance(loop, 9 * MS));
  EXPECT_EQ(log.n, 0);
  EXPECT_OK(eddy_loop_advance(loop, 1 * MS));
  EXPECT_EQ(log.n, 1);
  EXPECT_EQ(eddy_timer_deadline(t), -1);
  test_finish(loop);
}

Test(timer, delay_moves_the_deadline_by_delta_either_way) {
  eddy_loop *loop = test_fake_loop(0);
  log_t log = {0};
  tctx a = {0};
  eddy_timer *t = make(loop, &a, &log, 1);
  EXPECT_EQ(eddy_timer_delay(t, MS), -EINVAL);
  EXPECT_OK(eddy_timer_start(t, 10 * MS, 0));
  EXPECT_OK(eddy_timer_delay(t, 5 * MS));
  EXPECT_EQ(eddy_timer_deadline(t), 15 * MS);
  EXPECT_OK(eddy_timer_delay(t, -12 * MS));
  EXPECT_EQ(eddy_timer_deadline(t), 3 * MS);
  EXPECT_OK(eddy_loop_advance(loop, 3 * MS));
  EXPECT_EQ(log.n, 1);
  test_finish(loop);
}

Test(timer, repeating_timer_keeps_its_period_and_skips_missed_ones) {
  eddy_loop *loop = test_fake_loop(0);
  log_t log = {0};
  tctx a = {0};
  eddy_timer *t = make(loop, &a, &log, 1);
  EXPECT_OK(eddy_timer_start(t, 10 * MS, 10 * MS));
  for (int i = 0; i < 3; i++)
    EXPECT_OK(eddy_loop_advance(loop, 10 * MS));
  EXPECT_EQ(log.n, 3);
  EXPECT_EQ(eddy_timer_deadline(t), 40 * MS);
  /* 100 ms late: one firing, not ten, and the next period from now. */
  EXPECT_OK(eddy_loop_advance(loop, 100 * MS));
  EXPECT_EQ(log.n, 4);
  EXPECT_EQ(eddy_timer_deadline(t), 140 * MS);
  eddy_timer_stop(t);
  EXPECT_EQ(eddy_timer_active(t), 0);
  eddy_timer_stop(t); /* twice is harmless */
  test_finish(loop);
}

Test(timer, closing_a_timer_in_its_own_callback_is_safe_even_when_repeating) {
  eddy_loop *loop = test_loop();
  log_t log = {0};
  tctx a = {0};
  eddy_timer *t = make(loop, &a, &log, 1);
  a.action = CLOSE_SELF;
  EXPECT_OK(eddy_timer_start(t, 0, MS));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(log.n, 1);
  test_finish(loop);
}

Test(timer, start_after_close_reports_closed) {
  eddy_loop *loop = test_loop();
  log_t log = {0};
  tctx a = {0};
  eddy_timer *t = make(loop, &a, &log, 1);
  eddy_timer_close(t);
  EXPECT_EQ(eddy_timer_start(t, 0, 0), EDDY_ECLOSED);
  eddy_timer_close(t); /* closing twice before the turn ends is harmless */
  EXPECT_EQ(eddy_timer_loop(t), (intptr_t)loop);
  test_finish(loop);
}

Test(timer, negative_delay_counts_as_zero) {
  eddy_loop *loop = test_fake_loop(500);
  log_t log = {0};
  tctx a = {0};
  eddy_timer *t = make(loop, &a, &log, 1);
  EXPECT_OK(eddy_timer_start(t, -5, -7));
  EXPECT_EQ(eddy_timer_deadline(t), 500);
  EXPECT_OK(eddy_timer_reset(t, -1));
  EXPECT_EQ(eddy_timer_deadline(t), 500);
  EXPECT_OK(eddy_loop_advance(loop, 0));
  EXPECT_EQ(log.n, 1);
  EXPECT_EQ(eddy_timer_active(t), 0); /* negative repeat: one-shot */
  test_finish(loop);
}

Test(timer, advance_refuses_real_clock_and_negative_delta) {
  eddy_loop *loop = test_loop();
  eddy_loop *fake = test_fake_loop(0);
  EXPECT_EQ(eddy_loop_advance(loop, MS), -EINVAL);
  EXPECT_EQ(eddy_loop_advance(fake, -1), -EINVAL);
  EXPECT_OK(eddy_loop_free(loop));
  test_finish(fake);
}

Test(timer, real_clock_timer_fires_no_earlier_than_its_deadline) {
  eddy_loop *loop = test_loop();
  log_t log = {0};
  tctx a = {0};
  eddy_timer *t = make(loop, &a, &log, 1);
  int64_t start = eddy_loop_now(loop);
  EXPECT_OK(eddy_timer_start(t, 20 * MS, 0));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  eddy_loop_update_time(loop);
  EXPECT_EQ(log.n, 1);
  EXPECT_GE(eddy_loop_now(loop) - start, 20 * MS);
  test_finish(loop);
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

typedef struct order_check {
  int64_t last;
  int fired, bad;
  eddy_loop *loop;
} order_check;

static void check_order(eddy_timer *t, void *arg) {
  order_check *o = arg;
  int64_t now = eddy_loop_now(o->loop);
  (void)t;
  if (now < o->last)
    o->bad++;
  o->last = now;
  o->fired++;
}

/* 200,000 timers with random deadlines, a third cancelled: the rest fire
 * in order, each at its deadline. */
Test(timer, many_random_timers_fire_in_order_and_cancelled_ones_do_not) {
  enum { N = 200000 };
  eddy_loop *loop = test_fake_loop(0);
  eddy_timer **ts = malloc(N * sizeof *ts);
  int64_t *deadlines = malloc(N * sizeof *deadlines);
  order_check o = {.loop = loop};
  int live = 0;
  srand(7);
  for (int i = 0; i < N; i++) {
    EXPECT_OK(eddy_timer_new(loop, check_order, &o, &ts[i]));
    EXPECT_OK(eddy_timer_start(ts[i], (int64_t)(rand() % 1000000), 0));
  }
  for (int i = 0; i < N; i += 3)
    eddy_timer_close(ts[i]);
  for (int i = 0; i < N; i++)
    if (i % 3 != 0)
      deadlines[live++] = eddy_timer_deadline(ts[i]);
  qsort(deadlines, (size_t)live, sizeof *deadlines, cmp_i64);
  for (int step = 0; step < 1000; step++)
    EXPECT_OK(eddy_loop_advance(loop, 1000));
  EXPECT_EQ(o.fired, live);
  EXPECT_EQ(o.bad, 0);
  free(ts);
  free(deadlines);
  test_finish(loop);
}

Test(timer, heap_growth_failure_leaves_the_timer_stopped) {
  eddy_loop *loop = test_loop();
  log_t log = {0};
  tctx a = {0};
  eddy_timer *t = make(loop, &a, &log, 1);
  eddy__fault_fail_nth(EDDY__SYS_REALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy_timer_start(t, MS, 0), -ENOMEM);
  EXPECT_EQ(eddy_timer_active(t), 0);
  EXPECT_OK(eddy_timer_start(t, MS, 0)); /* and it recovers */
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(log.n, 1);
  test_finish(loop);
}

Test(timer, creation_failure_returns_enomem_and_leaks_nothing) {
  eddy_loop *loop = test_loop();
  eddy_timer *t = NULL;
  eddy__fault_fail_nth(EDDY__SYS_MALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy_timer_new(loop, check_order, NULL, &t), -ENOMEM);
  EXPECT_EQ(t, 0);
  test_finish(loop);
}

/* ---- Timers embedded in their owner (eddy__timer) ------------------------------ */

typedef struct owned {
  eddy__timer timer;
  int fired;
  int64_t at;
} owned;

static void owned_fired(eddy__timer *t, void *arg) {
  owned *o = arg;
  cr_assert(t == &o->timer);
  o->fired++;
  o->at = eddy_loop_now(t->loop);
}

Test(timer, an_embedded_timer_fires_in_deadline_order_with_public_ones) {
  eddy_loop *loop = test_fake_loop(0);
  owned a = {.fired = 0}, b = {.fired = 0};
  log_t log = {0};
  tctx c = {0};
  eddy__timer_init(loop, &a.timer, owned_fired, &a);
  eddy__timer_init(loop, &b.timer, owned_fired, &b);
  EXPECT_EQ(eddy__timer_active(&a.timer), 0);
  EXPECT_EQ(eddy__timer_deadline(&a.timer), -1);
  EXPECT_OK(eddy__timer_start(&a.timer, 20 * MS));
  EXPECT_OK(eddy_timer_start(make(loop, &c, &log, 1), 10 * MS, 0));
  EXPECT_OK(eddy__timer_start(&b.timer, 30 * MS));
  EXPECT_EQ(eddy__timer_deadline(&a.timer), 20 * MS);
  EXPECT_OK(eddy_loop_advance(loop, 10 * MS));
  EXPECT_EQ(log.n, 1);
  EXPECT_EQ(a.fired, 0);
  EXPECT_OK(eddy_loop_advance(loop, 10 * MS));
  EXPECT_EQ(a.fired, 1);
  EXPECT_EQ(a.at, 20 * MS);
  EXPECT_EQ(eddy__timer_active(&a.timer), 0);
  EXPECT_OK(eddy_loop_advance(loop, 10 * MS)); /* b at 30, once */
  EXPECT_EQ(b.fired, 1);
  EXPECT_EQ(eddy__timer_deadline(&b.timer), -1);
  EXPECT_OK(eddy__timer_start(&b.timer, 10 * MS)); /* armed again */
  EXPECT_EQ(eddy__timer_deadline(&b.timer), 40 * MS);
  EXPECT_OK(eddy_loop_advance(loop, 10 * MS));
  EXPECT_EQ(b.fired, 2);
  EXPECT_OK(eddy__timer_start(&b.timer, 10 * MS));
  eddy__timer_stop(&b.timer);
  eddy__timer_stop(&b.timer); /* idempotent */
  EXPECT_OK(eddy_loop_advance(loop, 50 * MS));
  EXPECT_EQ(b.fired, 2);
  test_finish(loop);
}

/* The same nanosecond edge for a timer embedded in its owner, which has
 * its own start path (no period, no handle). */
Test(timer, an_embedded_timer_does_not_fire_one_nanosecond_early) {
  eddy_loop *loop = test_fake_loop(5);
  owned o = {.fired = 0};
  eddy__timer_init(loop, &o.timer, owned_fired, &o);
  EXPECT_OK(eddy__timer_start(&o.timer, 20 * MS));
  EXPECT_EQ(eddy__timer_deadline(&o.timer), 5 + 20 * MS);
  EXPECT_OK(eddy_loop_advance(loop, 20 * MS - 1));
  EXPECT_EQ(o.fired, 0);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(o.fired, 0);
  EXPECT_EQ(eddy__timer_active(&o.timer), 1);
  EXPECT_OK(eddy_loop_advance(loop, 1));
  EXPECT_EQ(o.fired, 1);
  EXPECT_EQ(o.at, 5 + 20 * MS);
  /* Armed again from a clock that is not a whole millisecond. */
  EXPECT_OK(eddy__timer_start(&o.timer, 1));
  EXPECT_OK(eddy_loop_advance(loop, 0));
  EXPECT_EQ(o.fired, 1);
  EXPECT_OK(eddy_loop_advance(loop, 1));
  EXPECT_EQ(o.fired, 2);
  test_finish(loop);
}

Test(timer, an_embedded_timer_allocates_nothing_once_the_heap_has_room) {
  eddy_loop *loop = test_fake_loop(0);
  owned o[4] = {{.fired = 0}};
  long live;
  for (int i = 0; i < 4; i++) {
    eddy__timer_init(loop, &o[i].timer, owned_fired, &o[i]);
    EXPECT_OK(eddy__timer_start(&o[i].timer, MS)); /* grows the heap */
  }
  for (int i = 0; i < 4; i++)
    eddy__timer_stop(&o[i].timer);
  live = eddy__alloc_live();
  eddy__fault_fail_after(EDDY__SYS_MALLOC, 1, ENOMEM);
  eddy__fault_fail_after(EDDY__SYS_CALLOC, 1, ENOMEM);
  eddy__fault_fail_after(EDDY__SYS_REALLOC, 1, ENOMEM);
  for (int i = 0; i < 4; i++)
    EXPECT_OK(eddy__timer_start(&o[i].timer, (i + 1) * MS));
  EXPECT_EQ(eddy__alloc_live(), live);
  EXPECT_OK(eddy_loop_advance(loop, 4 * MS));
  for (int i = 0; i < 4; i++)
    EXPECT_EQ(o[i].fired, 1);
  eddy__fault_reset();
  test_finish(loop);
}

Test(timer, an_embedded_timer_start_fails_cleanly_when_the_heap_cannot_grow) {
  eddy_loop *loop = test_fake_loop(0);
  owned o = {.fired = 0};
  eddy__timer_init(loop, &o.timer, owned_fired, &o);
  eddy__fault_fail_nth(EDDY__SYS_REALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy__timer_start(&o.timer, MS), -ENOMEM);
  EXPECT_EQ(eddy__timer_active(&o.timer), 0);
  EXPECT_OK(eddy__timer_start(&o.timer, MS));
  EXPECT_OK(eddy_loop_advance(loop, MS));
  EXPECT_EQ(o.fired, 1);
  test_finish(loop);
}

Test(timer, an_armed_embedded_timer_keeps_a_real_loop_alive_until_it_fires) {
  eddy_loop *loop = test_loop();
  owned o = {.fired = 0};
  eddy__timer_init(loop, &o.timer, owned_fired, &o);
  EXPECT_OK(eddy__timer_start(&o.timer, 2 * MS));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 1);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(o.fired, 1);
  test_finish(loop);
}

Test(timer, close_all_leaves_an_embedded_timer_to_its_owner) {
  eddy_loop *loop = test_fake_loop(0);
  owned o = {.fired = 0};
  eddy__timer_init(loop, &o.timer, owned_fired, &o);
  EXPECT_OK(eddy__timer_start(&o.timer, MS));
  eddy_loop_close_all(loop);
  EXPECT_EQ(eddy__timer_active(&o.timer), 1);
  EXPECT_OK(eddy_loop_advance(loop, MS));
  EXPECT_EQ(o.fired, 1);
  test_finish(loop);
}
