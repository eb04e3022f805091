/* eddy_loop_call_threadsafe: waking a sleeping loop, heavy concurrent use,
 * order per thread, and the wake-up descriptor's failure modes. */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "helpers.h"

enum { THREADS = 4, CALLS = 20000 };

typedef struct shared {
  eddy_loop *loop;
  atomic_int started;
  long count;
  long last[THREADS]; /* per thread: last sequence number seen */
  int out_of_order;
} shared;

typedef struct call {
  shared *s;
  int thread;
  long seq;
} call;

static call calls[THREADS][CALLS];

static void on_call(eddy_loop *loop, void *arg) {
  call *c = arg;
  shared *s = c->s;
  if (c->seq != s->last[c->thread] + 1)
    s->out_of_order++;
  s->last[c->thread] = c->seq;
  if (++s->count == (long)THREADS * CALLS)
    eddy_loop_stop(loop);
}

static void *producer(void *arg) {
  call *mine = arg;
  shared *s = mine[0].s;
  atomic_fetch_add(&s->started, 1);
  for (int i = 0; i < CALLS; i++)
    while (eddy_loop_call_threadsafe(s->loop, on_call, &mine[i]) != 0) {
    }
  return NULL;
}

Test(wakeup, many_threads_calling_at_once_deliver_every_call_in_order) {
  shared s = {.loop = test_loop()};
  pthread_t th[THREADS];
  for (int t = 0; t < THREADS; t++) {
    s.last[t] = -1;
    for (int i = 0; i < CALLS; i++)
      calls[t][i] = (call){&s, t, i};
    cr_assert(pthread_create(&th[t], NULL, producer, calls[t]) == 0);
  }
  EXPECT_GE(eddy_loop_run(s.loop, EDDY_RUN_UNTIL_STOPPED), 0);
  for (int t = 0; t < THREADS; t++)
    pthread_join(th[t], NULL);
  EXPECT_EQ(s.count, (long)THREADS * CALLS);
  EXPECT_EQ(s.out_of_order, 0);
  test_finish(s.loop);
}

static void set_flag(eddy_loop *loop, void *arg) {
  *(int *)arg = 1;
  eddy_loop_stop(loop);
}

typedef struct waker {
  eddy_loop *loop;
  pid_t loop_tid;
  int flag;
  int slept; /* the loop's thread was seen asleep before the call */
} waker;

static int loop_asleep(void *arg) {
  return test_thread_sleeping(((waker *)arg)->loop_tid);
}

/* Calls once the loop's thread is asleep in the backend's wait. */
static void *wake_later(void *arg) {
  waker *w = arg;
  w->slept = test_wait_until(loop_asleep, w, 10000);
  EXPECT_OK(eddy_loop_call_threadsafe(w->loop, set_flag, &w->flag));
  return NULL;
}

Test(wakeup, a_call_from_another_thread_wakes_a_sleeping_loop) {
  waker w = {.loop = test_loop(), .loop_tid = gettid()};
  pthread_t th;
  eddy_timer *bound;
  /* A lost wake-up fails after 10 s instead of sleeping for ever. */
  EXPECT_OK(eddy_timer_new(w.loop, test_stop_loop, NULL, &bound));
  EXPECT_OK(eddy_timer_start(bound, 10 * EDDY_NSEC_PER_SEC, 0));
  cr_assert(pthread_create(&th, NULL, wake_later, &w) == 0);
  /* Nothing else to do: the loop sleeps until the call arrives. */
  EXPECT_GE(eddy_loop_run(w.loop, EDDY_RUN_UNTIL_STOPPED), 0);
  pthread_join(th, NULL);
  EXPECT_EQ(w.slept, 1);
  EXPECT_EQ(w.flag, 1);
  eddy_timer_close(bound);
  test_finish(w.loop);
}

Test(wakeup, a_call_from_the_loop_thread_runs_on_the_next_turn) {
  eddy_loop *loop = test_loop();
  int flag = 0;
  EXPECT_OK(eddy_loop_call_threadsafe(loop, set_flag, &flag));
  EXPECT_EQ(eddy_loop_next_timeout(loop), 0);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(flag, 1);
  test_finish(loop);
}

Test(wakeup, eagain_writing_the_wake_up_descriptor_loses_no_call) {
  eddy_loop *loop = test_loop();
  int flag = 0;
  /* EAGAIN means the descriptor is full, hence already readable. */
  eddy__fault_fail_nth(EDDY__SYS_WRITE, 1, EAGAIN);
  EXPECT_OK(eddy_loop_call_threadsafe(loop, set_flag, &flag));
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_WRITE), 1);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(flag, 1);
  test_finish(loop);
}

Test(wakeup, eagain_reading_the_wake_up_descriptor_is_harmless) {
  eddy_loop *loop = test_loop();
  int flag = 0;
  EXPECT_OK(eddy_loop_call_threadsafe(loop, set_flag, &flag));
  eddy__fault_fail_nth(EDDY__SYS_READ, 1, EAGAIN);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_READ), 1);
  EXPECT_EQ(flag, 1);
  /* The descriptor is not left readable: a host loop would spin. */
  EXPECT_EQ(eddy_loop_next_timeout(loop), -1);
  test_finish(loop);
}

Test(wakeup, without_eventfd_a_pipe_carries_the_wake_up) {
  eddy_loop *loop;
  waker w;
  pthread_t th;
  eddy__fault_fail_nth(EDDY__SYS_EVENTFD, 1, ENOSYS);
  EXPECT_OK(eddy_loop_new(NULL, &loop));
  EXPECT_EQ(eddy__fault_calls(EDDY__SYS_PIPE2), 1);
  w = (waker){.loop = loop};
  cr_assert(pthread_create(&th, NULL, wake_later, &w) == 0);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_STOPPED), 0);
  pthread_join(th, NULL);
  EXPECT_EQ(w.flag, 1);
  for (int i = 0; i < 100; i++) /* more wake-ups than one read drains */
    EXPECT_OK(eddy_loop_call_threadsafe(loop, set_flag, &w.flag));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  test_finish(loop);
}

Test(wakeup, threadsafe_call_allocation_failure_returns_enomem) {
  eddy_loop *loop = test_loop();
  int flag = 0;
  eddy__fault_fail_nth(EDDY__SYS_REALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy_loop_call_threadsafe(loop, set_flag, &flag), -ENOMEM);
  EXPECT_EQ(eddy_loop_next_timeout(loop), -1); /* nothing half-queued */
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(flag, 0);
  test_finish(loop);
}
