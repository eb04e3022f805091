/* Injected failures in the loop's own system calls and allocations: EINTR
 * while waiting, backend errors, creation failures, and an allocation
 * sweep in SQLite's manner. */
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

#define MS EDDY_NSEC_PER_MSEC

static int wait_kind(eddy_loop *loop) {
  return strcmp(eddy_loop_backend_name(loop), "poll") == 0
             ? EDDY__SYS_POLL
             : EDDY__SYS_EPOLL_WAIT;
}

typedef struct fire {
  int64_t at;
  int count;
} fire;

static void note_fire(eddy_timer *t, void *arg) {
  fire *f = arg;
  eddy_loop_update_time(eddy_timer_loop(t));
  f->at = eddy_loop_now(eddy_timer_loop(t));
  f->count++;
}

Test(faults, eintr_in_the_wait_does_not_stop_the_loop_or_fire_timers_early) {
  eddy_loop *loop = test_loop();
  eddy_timer *t;
  fire f = {0};
  int64_t start = eddy_loop_now(loop);
  EXPECT_OK(eddy_timer_new(loop, note_fire, &f, &t));
  EXPECT_OK(eddy_timer_start(t, 30 * MS, 0));
  /* The first wait is interrupted at once; the loop must wait again for
   * what remains, not give up and not fire the timer early. */
  eddy__fault_fail_nth(wait_kind(loop), 1, EINTR);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(f.count, 1);
  EXPECT_GE(f.at - start, 30 * MS);
  EXPECT_GE(eddy__fault_calls(wait_kind(loop)), 2);
  test_finish(loop);
}

static void noop_handler(int sig) {
  (void)sig;
}

typedef struct pester {
  pthread_t target;
  volatile int stop;
  int sent;
} pester;

static void *send_signals(void *arg) {
  pester *p = arg;
  while (!p->stop) {
    pthread_kill(p->target, SIGUSR2);
    p->sent++;
    usleep(2000);
  }
  return NULL;
}

/* A real signal, with a handler installed without SA_RESTART, interrupts
 * the wait again and again; the timer still fires, not early. */
Test(faults, real_signals_interrupting_the_wait_are_harmless) {
  eddy_loop *loop = test_loop();
  eddy_timer *t;
  fire f = {0};
  pester p = {.target = pthread_self()};
  pthread_t th;
  struct sigaction sa;
  int64_t start = eddy_loop_now(loop);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = noop_handler;
  sigaction(SIGUSR2, &sa, NULL);
  EXPECT_OK(eddy_timer_new(loop, note_fire, &f, &t));
  EXPECT_OK(eddy_timer_start(t, 50 * MS, 0));
  cr_assert(pthread_create(&th, NULL, send_signals, &p) == 0);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  p.stop = 1;
  pthread_join(th, NULL);
  EXPECT_EQ(f.count, 1);
  EXPECT_GE(f.at - start, 50 * MS);
  EXPECT_GT(p.sent, 3);
  test_finish(loop);
}

static void stop_cb(eddy_timer *t, void *arg) {
  (*(int *)arg)++;
  eddy_loop_stop(eddy_timer_loop(t));
}

Test(faults, a_failing_wait_is_returned_by_run_and_the_loop_stays_usable) {
  eddy_loop *loop = test_loop();
  eddy_timer *t;
  int fired = 0;
  EXPECT_OK(eddy_timer_new(loop, stop_cb, &fired, &t));
  EXPECT_OK(eddy_timer_start(t, MS, 0));
  eddy__fault_fail_nth(wait_kind(loop), 1, ENOMEM);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), -ENOMEM);
  EXPECT_EQ(fired, 0);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(fired, 1);
  test_finish(loop);
}

Test(faults, loop_creation_failures_return_the_error_and_leak_nothing) {
  eddy_loop *loop = NULL;
  eddy_loop_options epoll = {.backend = EDDY_BACKEND_EPOLL};
  eddy__fault_fail_nth(EDDY__SYS_EPOLL_CREATE1, 1, EMFILE);
  EXPECT_EQ(eddy_loop_new(&epoll, &loop), -EMFILE);
  eddy__fault_fail_nth(EDDY__SYS_EVENTFD, 1, EMFILE);
  EXPECT_EQ(eddy_loop_new(&epoll, &loop), -EMFILE);
  eddy__fault_fail_nth(EDDY__SYS_EPOLL_CTL, 1, ENOMEM);
  EXPECT_EQ(eddy_loop_new(&epoll, &loop), -ENOMEM);
  eddy__fault_fail_nth(EDDY__SYS_EVENTFD, 1, ENOSYS);
  eddy__fault_fail_nth(EDDY__SYS_PIPE2, 1, ENFILE);
  EXPECT_EQ(eddy_loop_new(&epoll, &loop), -ENFILE);
  EXPECT_EQ(loop, 0);
  EXPECT_EQ(eddy__alloc_live(), 0);
}

/* The sweep: a scenario that creates a loop, timers, work and a call, runs
 * and frees everything, is run with the 1st, 2nd, 3rd... allocation
 * failing, until a run meets no failure. Each run must end cleanly (an
 * error code, or success) with nothing leaked. */
static void sweep_work(void *arg) {
  (void)arg;
}

static void sweep_done(eddy_loop *loop, int status, void *arg) {
  (void)loop;
  (void)status;
  (*(int *)arg)++;
}

static void sweep_call(eddy_loop *loop, void *arg) {
  (void)loop;
  (*(int *)arg)++;
}

static void sweep_timer(eddy_timer *t, void *arg) {
  (*(int *)arg)++;
  eddy_timer_close(t);
}

static void sweep_handle_call(eddy_call *call, void *arg) {
  (*(int *)arg)++;
  eddy_call_close(call);
}

static int scenario(void) {
  eddy_loop *loop;
  eddy_timer *t;
  eddy_call *call;
  int hits = 0, err, i;
  err = eddy_loop_new(NULL, &loop);
  if (err)
    return err;
  for (i = 0; i < 20 && err == 0; i++) {
    err = eddy_timer_new(loop, sweep_timer, &hits, &t);
    if (err == 0 && (err = eddy_timer_start(t, i * 100000, 0)) != 0)
      eddy_timer_close(t);
  }
  if (err == 0)
    err = eddy_work_submit(loop, sweep_work, sweep_done, &hits, NULL);
  if (err == 0)
    err = eddy_loop_call_soon(loop, sweep_call, &hits);
  if (err == 0 &&
      (err = eddy_call_new(loop, sweep_handle_call, &hits, &call)) == 0)
    err = eddy_call_schedule(call);
  if (err == 0)
    err = eddy_loop_call_threadsafe(loop, sweep_call, &hits);
  eddy_loop_close_all(loop);
  if (eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE) != 0)
    cr_fail("loop not idle after close_all");
  EXPECT_OK(eddy_loop_free(loop));
  return err;
}

static void sweep(int kind) {
  int completed = 0;
  for (uint64_t n = 1; n < 500 && !completed; n++) {
    int err;
    eddy__fault_fail_nth(kind, n, ENOMEM);
    err = scenario();
    cr_assert(err == 0 || err == -ENOMEM, "run %lu: %s", (unsigned long)n,
              eddy_errname(err));
    EXPECT_EQ(eddy__alloc_live(), 0);
    completed = eddy__fault_calls(kind) < n;
  }
  cr_assert(completed, "the scenario never completed");
}

Test(faults, allocation_sweep_malloc) {
  sweep(EDDY__SYS_MALLOC);
}

Test(faults, allocation_sweep_calloc) {
  sweep(EDDY__SYS_CALLOC);
}

Test(faults, allocation_sweep_realloc) {
  sweep(EDDY__SYS_REALLOC);
}
