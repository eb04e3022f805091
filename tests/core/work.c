/* The thread pool: many jobs, cancellation, done exactly once, failure to
 * start threads, signals blocked in pool threads. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "helpers.h"

enum { JOBS = 10000 };

typedef struct job {
  atomic_int ran;
  int done_calls;
  int status;
} job;

static void do_work(void *arg) {
  job *j = arg;
  atomic_fetch_add(&j->ran, 1);
}

static void on_done(eddy_loop *loop, int status, void *arg) {
  job *j = arg;
  (void)loop;
  j->done_calls++;
  j->status = status;
}

Test(work, ten_thousand_jobs_with_cancellation_each_done_exactly_once) {
  eddy_loop *loop = test_loop();
  job *jobs = calloc(JOBS, sizeof *jobs);
  eddy_work **reqs = calloc(JOBS, sizeof *reqs);
  int cancelled = 0, busy = 0;
  for (int i = 0; i < JOBS; i++)
    EXPECT_OK(eddy_work_submit(loop, do_work, on_done, &jobs[i], &reqs[i]));
  for (int i = 0; i < JOBS; i += 2) {
    int r = eddy_work_cancel(reqs[i]);
    if (r == 0)
      cancelled++;
    else {
      EXPECT_EQ(r, -EBUSY);
      busy++;
    }
  }
  EXPECT_EQ(eddy_loop_free(loop), -EBUSY); /* work still pending */
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_GT(cancelled, 0);
  for (int i = 0; i < JOBS; i++) {
    EXPECT_EQ(jobs[i].done_calls, 1);
    if (jobs[i].status == -ECANCELED)
      EXPECT_EQ(atomic_load(&jobs[i].ran), 0);
    else {
      EXPECT_EQ(jobs[i].status, 0);
      EXPECT_EQ(atomic_load(&jobs[i].ran), 1);
    }
  }
  free(jobs);
  free(reqs);
  test_finish(loop);
}

typedef struct gate {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int open, entered;
} gate;

static gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

static void wait_at_gate(void *arg) {
  (void)arg;
  pthread_mutex_lock(&g.lock);
  g.entered++;
  pthread_cond_broadcast(&g.cond);
  while (!g.open)
    pthread_cond_wait(&g.cond, &g.lock);
  pthread_mutex_unlock(&g.lock);
}

static void open_gate(void) {
  pthread_mutex_lock(&g.lock);
  g.open = 1;
  pthread_cond_broadcast(&g.cond);
  pthread_mutex_unlock(&g.lock);
}

static void wait_entered(int n) {
  pthread_mutex_lock(&g.lock);
  while (g.entered < n)
    pthread_cond_wait(&g.cond, &g.lock);
  pthread_mutex_unlock(&g.lock);
}

Test(work, running_work_cannot_be_cancelled_and_queued_work_can) {
  eddy_loop *loop;
  eddy_loop_options o = {.threadpool_size = 1};
  eddy_work *running, *queued;
  job a = {0}, b = {0};
  EXPECT_OK(eddy_loop_new(&o, &loop));
  EXPECT_OK(eddy_work_submit(loop, wait_at_gate, on_done, &a, &running));
  EXPECT_OK(eddy_work_submit(loop, do_work, on_done, &b, &queued));
  wait_entered(1);
  EXPECT_EQ(eddy_work_cancel(running), -EBUSY);
  EXPECT_OK(eddy_work_cancel(queued));
  EXPECT_EQ(b.done_calls, 0); /* never from inside cancel */
  open_gate();
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(a.done_calls, 1);
  EXPECT_EQ(a.status, 0);
  EXPECT_EQ(b.done_calls, 1);
  EXPECT_EQ(b.status, -ECANCELED);
  EXPECT_EQ(atomic_load(&b.ran), 0);
  test_finish(loop);
}

Test(work, close_all_cancels_queued_work) {
  eddy_loop *loop;
  eddy_loop_options o = {.threadpool_size = 1};
  job a = {0}, b[5] = {{0}};
  EXPECT_OK(eddy_loop_new(&o, &loop));
  EXPECT_OK(eddy_work_submit(loop, wait_at_gate, on_done, &a, NULL));
  for (int i = 0; i < 5; i++)
    EXPECT_OK(eddy_work_submit(loop, do_work, on_done, &b[i], NULL));
  wait_entered(1);
  eddy_loop_close_all(loop);
  open_gate();
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  for (int i = 0; i < 5; i++)
    EXPECT_EQ(b[i].status, -ECANCELED);
  EXPECT_EQ(a.status, 0);
  test_finish(loop);
}

Test(work, no_thread_can_start_reports_the_error_and_later_recovers) {
  eddy_loop *loop = test_loop();
  job a = {0};
  eddy__fault_fail_after(EDDY__SYS_THREAD_CREATE, 1, EAGAIN);
  EXPECT_EQ(eddy_work_submit(loop, do_work, on_done, &a, NULL), -EAGAIN);
  eddy__fault_reset();
  EXPECT_OK(eddy_work_submit(loop, do_work, on_done, &a, NULL));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(a.done_calls, 1);
  test_finish(loop);
}

Test(work, a_pool_that_starts_some_threads_works_with_those) {
  eddy_loop *loop;
  eddy_loop_options o = {.threadpool_size = 4};
  job a[20] = {{0}};
  EXPECT_OK(eddy_loop_new(&o, &loop));
  eddy__fault_fail_after(EDDY__SYS_THREAD_CREATE, 3, EAGAIN);
  for (int i = 0; i < 20; i++)
    EXPECT_OK(eddy_work_submit(loop, do_work, on_done, &a[i], NULL));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  for (int i = 0; i < 20; i++)
    EXPECT_EQ(a[i].done_calls, 1);
  test_finish(loop);
}

Test(work, allocation_failures_return_enomem_and_leave_nothing) {
  eddy_loop *loop = test_loop();
  job a = {0};
  eddy__fault_fail_nth(EDDY__SYS_CALLOC, 1, ENOMEM); /* thread table */
  EXPECT_EQ(eddy_work_submit(loop, do_work, on_done, &a, NULL), -ENOMEM);
  eddy__fault_fail_nth(EDDY__SYS_MALLOC, 1, ENOMEM); /* the request */
  EXPECT_EQ(eddy_work_submit(loop, do_work, on_done, &a, NULL), -ENOMEM);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(a.done_calls, 0);
  EXPECT_EQ(eddy_work_submit(loop, NULL, on_done, &a, NULL), -EINVAL);
  EXPECT_EQ(eddy_work_submit(loop, do_work, NULL, &a, NULL), -EINVAL);
  test_finish(loop);
}

static void check_mask(void *arg) {
  sigset_t set;
  pthread_sigmask(SIG_SETMASK, NULL, &set);
  *(int *)arg = sigismember(&set, SIGTERM) && sigismember(&set, SIGUSR1) &&
                sigismember(&set, SIGINT);
}

static void ignore_done(eddy_loop *loop, int status, void *arg) {
  (void)loop;
  (void)arg;
  EXPECT_EQ(status, 0);
}

Test(work, pool_threads_block_signals) {
  eddy_loop *loop = test_loop();
  int blocked = 0;
  EXPECT_OK(eddy_work_submit(loop, check_mask, ignore_done, &blocked, NULL));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(blocked, 1);
  test_finish(loop);
}

Test(work, pool_size_comes_from_the_environment) {
  eddy_loop *loop;
  enum { N = 3 };
  job a[N] = {{0}};
  setenv("EDDY_THREADPOOL_SIZE", "3", 1);
  loop = test_loop();
  g.open = 0;
  for (int i = 0; i < N; i++)
    EXPECT_OK(eddy_work_submit(loop, wait_at_gate, on_done, &a[i], NULL));
  wait_entered(N); /* three at once: three threads */
  open_gate();
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  test_finish(loop);
}
