/* coro_basic.c: spawning, results, sleep, yield, cancellation of the
 * simple waits, ownership and scopes. */
#include "coro_test.h"

static int return_seven(eddy_coro *co, void *arg) {
  int *ran = arg;
  (*ran)++;
  EXPECT_EQ(eddy_coro_current(), co);
  return -7;
}

Test(coro, spawn_runs_on_a_coming_turn_and_reports_its_result) {
  eddy_loop *loop = test_loop();
  coro_done d = {0};
  int ran = 0;
  coro_start(loop, return_seven, &ran, &d);
  EXPECT_EQ(ran, 0); /* not inside the spawn */
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(d.calls, 1);
  EXPECT_EQ(d.result, -7);
  EXPECT_EQ(eddy_coro_current(), NULL);
  test_finish(loop);
}

static int sleeper(eddy_coro *co, void *arg) {
  int *woke = arg;
  int err = eddy_coro_sleep(co, 5 * EDDY_NSEC_PER_SEC);
  *woke = 1;
  return err;
}

Test(coro, sleep_waits_for_loop_time_on_a_fake_clock) {
  eddy_loop *loop = test_fake_loop(0);
  coro_done d = {0};
  int woke = 0;
  coro_start(loop, sleeper, &woke, &d);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(woke, 0);
  EXPECT_OK(eddy_loop_advance(loop, 4 * EDDY_NSEC_PER_SEC));
  EXPECT_EQ(woke, 0);
  EXPECT_OK(eddy_loop_advance(loop, EDDY_NSEC_PER_SEC));
  EXPECT_EQ(woke, 1);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(d.calls, 1);
  EXPECT_EQ(d.result, 0);
  test_finish(loop);
}

Test(coro, cancel_while_sleeping_returns_ecanceled_and_stops_the_timer) {
  eddy_loop *loop = test_fake_loop(0);
  coro_done d = {0};
  int woke = 0;
  eddy_coro *co = coro_start(loop, sleeper, &woke, &d);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  eddy_coro_cancel(co);
  EXPECT_EQ(woke, 0); /* never inside the cancel */
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(woke, 1);
  EXPECT_EQ(d.result, -ECANCELED);
  test_finish(loop);
}

static int cancelled_early(eddy_coro *co, void *arg) {
  int *ran = arg;
  (*ran)++;
  EXPECT_EQ(eddy_coro_cancelled(co), 1);
  EXPECT_EQ(eddy_coro_yield(co), -ECANCELED);
  EXPECT_EQ(eddy_coro_sleep(co, 1), -ECANCELED);
  return 0;
}

Test(coro, a_coroutine_cancelled_before_it_starts_still_runs_its_function) {
  eddy_loop *loop = test_loop();
  coro_done d = {0};
  int ran = 0;
  eddy_coro *co = coro_start(loop, cancelled_early, &ran, &d);
  eddy_coro_cancel(co);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(d.calls, 1);
  test_finish(loop);
}

typedef struct pingpong {
  char log[64];
  int n;
} pingpong;

static int yielder_a(eddy_coro *co, void *arg) {
  pingpong *p = arg;
  for (int i = 0; i < 3; i++) {
    p->log[p->n++] = 'a';
    EXPECT_OK(eddy_coro_yield(co));
  }
  return 0;
}

static int yielder_b(eddy_coro *co, void *arg) {
  pingpong *p = arg;
  for (int i = 0; i < 3; i++) {
    p->log[p->n++] = 'b';
    EXPECT_OK(eddy_coro_yield(co));
  }
  return 0;
}

Test(coro, yield_lets_the_other_coroutines_run_in_turn) {
  eddy_loop *loop = test_loop();
  coro_done da = {0}, db = {0};
  pingpong p = {{0}, 0};
  coro_start(loop, yielder_a, &p, &da);
  coro_start(loop, yielder_b, &p, &db);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_STR(p.log, "ababab");
  test_finish(loop);
}

Test(coro, waiting_calls_refuse_outside_their_coroutine) {
  eddy_loop *loop = test_fake_loop(0);
  coro_done d = {0};
  int woke = 0;
  eddy_coro *co = coro_start(loop, sleeper, &woke, &d);
  EXPECT_EQ(eddy_coro_sleep(co, 1), -EPERM);
  EXPECT_EQ(eddy_coro_yield(co), -EPERM);
  EXPECT_EQ(eddy_coro_wait_children(co), -EPERM);
  eddy_coro_cancel(co);
  test_finish(loop);
}

Test(coro, close_all_cancels_a_waiting_coroutine_and_the_loop_frees) {
  eddy_loop *loop = test_fake_loop(0);
  coro_done d = {0};
  int woke = 0;
  coro_start(loop, sleeper, &woke, &d);
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(eddy_loop_free(loop), -EBUSY);
  test_finish(loop);
  EXPECT_EQ(d.result, -ECANCELED);
}

/* ---- Ownership ------------------------------------------------------------------- */

static void count_cleanup(void *arg) {
  int *log = arg;
  *log = *log * 10 + 1;
}

static void count_cleanup2(void *arg) {
  int *log = arg;
  *log = *log * 10 + 2;
}

static int registers_cleanups(eddy_coro *co, void *arg) {
  EXPECT_OK(eddy_coro_defer(co, count_cleanup, arg));
  EXPECT_OK(eddy_coro_defer(co, count_cleanup2, arg));
  return 0;
}

Test(coro, cleanups_run_when_the_coroutine_ends_last_registered_first) {
  eddy_loop *loop = test_loop();
  coro_done d = {0};
  int log = 0;
  coro_start(loop, registers_cleanups, &log, &d);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(log, 21);
  test_finish(loop);
}

static int leaves_a_stream_open(eddy_coro *co, void *arg) {
  eddy_coro_stream *cs;
  int fd = *(int *)arg;
  eddy_stream *s;
  EXPECT_OK(eddy_stream_open(eddy_coro_loop(co), fd, NULL, NULL, &s));
  EXPECT_OK(eddy_coro_stream_open(co, s, NULL, &cs));
  EXPECT_OK(eddy_coro_write(co, cs, "bye", 3));
  return 0; /* and forgets cs */
}

Test(coro, a_stream_left_open_is_closed_when_its_coroutine_returns) {
  eddy_loop *loop = test_loop();
  coro_done d = {0};
  int sv[2];
  char buf[16];
  test_socketpair(sv);
  coro_start(loop, leaves_a_stream_open, &sv[0], &d);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(d.calls, 1);
  /* What it wrote still arrives, then the end. */
  EXPECT_EQ(test_read_all(sv[1], buf, sizeof buf, 1000), 3);
  EXPECT_EQ(memcmp(buf, "bye", 3), 0);
  close(sv[1]);
  test_finish(loop);
}

static int leaves_a_process(eddy_coro *co, void *arg) {
  const char *argv[] = {"sleep", "30", NULL};
  eddy_process_options o = {.file = "sleep", .argv = argv};
  eddy_process *p;
  pid_t *pid = arg;
  EXPECT_OK(eddy_process_spawn(eddy_coro_loop(co), &o, &p));
  *pid = eddy_process_pid(p);
  EXPECT_OK(eddy_coro_own_process(co, p));
  return 0;
}

static int pid_gone(void *arg) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", *(pid_t *)arg);
  char st = test_proc_state(path);
  return st == 0 || st == 'Z';
}

Test(coro, an_owned_process_is_killed_when_its_coroutine_returns) {
  eddy_loop *loop = test_loop();
  coro_done d = {0};
  pid_t pid = 0;
  coro_start(loop, leaves_a_process, &pid, &d);
  /* Runs until the child is reaped: the handle keeps the loop alive. */
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(d.calls, 1);
  cr_assert(test_wait_until(pid_gone, &pid, 5000));
  test_finish(loop);
}

static int yields_forever(eddy_coro *co, void *arg) {
  int *result = arg;
  while ((*result = eddy_coro_yield(co)) == 0)
    ;
  return *result;
}

Test(coro, cancel_while_blocked_in_yield) {
  eddy_loop *loop = test_loop();
  coro_done d = {0};
  int result = 1;
  eddy_coro *co = coro_start(loop, yields_forever, &result, &d);
  for (int i = 0; i < 3; i++)
    EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  EXPECT_EQ(result, 0);
  eddy_coro_cancel(co);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(result, -ECANCELED);
  EXPECT_EQ(d.calls, 1);
  test_finish(loop);
}
