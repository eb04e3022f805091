/* eddy_loop_fork(): a child keeps using a loop created before fork(). */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

typedef struct counts {
  int timers, calls, work_ok, work_cancelled, signals;
} counts;

static void on_timer(eddy_timer *t, void *arg) {
  ((counts *)arg)->timers++;
  eddy_timer_close(t);
}

static void on_call(eddy_loop *loop, void *arg) {
  (void)loop;
  ((counts *)arg)->calls++;
}

static void on_signal(eddy_signal *h, int signum, void *arg) {
  (void)signum;
  ((counts *)arg)->signals++;
  eddy_signal_close(h);
}

static void quick(void *arg) {
  (void)arg;
}

static void on_done(eddy_loop *loop, int status, void *arg) {
  counts *c = arg;
  (void)loop;
  if (status == 0)
    c->work_ok++;
  else if (status == -ECANCELED)
    c->work_cancelled++;
}

static atomic_int release, holding;
static void hold(void *arg) {
  (void)arg;
  atomic_store(&holding, 1);
  while (!atomic_load(&release))
    usleep(1000);
}

static int is_holding(void *arg) {
  (void)arg;
  return atomic_load(&holding);
}

static pid_t child_loop_tid;
static int child_loop_asleep(void *arg) {
  (void)arg;
  return test_thread_sleeping(child_loop_tid);
}

/* Calls into the child's loop from another thread once the loop sleeps
 * (or after 10 s: the call must arrive all the same). */
static void *wake(void *arg) {
  eddy_loop *loop = ((void **)arg)[0];
  (void)test_wait_until(child_loop_asleep, NULL, 10000);
  eddy_loop_call_threadsafe(loop, on_call, ((void **)arg)[1]);
  return NULL;
}

/* In the child: everything the loop offers still works. Exit status says
 * which check failed (0: all good). */
static int child(eddy_loop *loop, counts *c, eddy_signal *inherited) {
  eddy_timer *t;
  eddy_signal *h;
  pthread_t th;
  void *args[2] = {loop, c};
  if (eddy_loop_fork(loop) != 0)
    return 10;
  eddy_signal_close(inherited); /* the parent's business */
  if (eddy_timer_new(loop, on_timer, c, &t) || eddy_timer_start(t, 1000000, 0))
    return 11;
  if (eddy_work_submit(loop, quick, on_done, c, NULL))
    return 12;
  if (eddy_signal_start(loop, SIGUSR1, on_signal, c, &h))
    return 13;
  kill(getpid(), SIGUSR1);
  child_loop_tid = gettid();
  if (pthread_create(&th, NULL, wake, args))
    return 14;
  if (eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE) < 0)
    return 15;
  while (c->calls == 0) /* the thread's call may come after idle */
    if (eddy_loop_run(loop, EDDY_RUN_ONCE) < 0)
      return 16;
  pthread_join(th, NULL);
  /* Work queued or running in the parent's threads: cancelled here. */
  if (c->timers != 1 || c->work_ok != 1 || c->signals != 1)
    return 17;
  if (c->work_cancelled != 2)
    return 18;
  if (eddy_loop_free(loop) != 0)
    return 19;
  return eddy__alloc_live() == 0 ? 0 : 20;
}

Test(fork, the_child_uses_the_loop_after_eddy_loop_fork_and_the_parent_too) {
  eddy_loop *loop;
  eddy_loop_options o = {.threadpool_size = 1};
  counts c = {0};
  eddy_signal *h;
  int status;
  pid_t pid;
  EXPECT_OK(eddy_loop_new(&o, &loop));
  EXPECT_OK(eddy_signal_start(loop, SIGUSR2, on_signal, &c, &h));
  EXPECT_OK(eddy_work_submit(loop, hold, on_done, &c, NULL));  /* running */
  EXPECT_OK(eddy_work_submit(loop, quick, on_done, &c, NULL)); /* queued */
  /* One request running in the pool's thread, the other queued. */
  cr_assert(test_wait_until(is_holding, NULL, 10000), "hold never started");
  pid = fork();
  cr_assert(pid >= 0);
  if (pid == 0)
    _exit(child(loop, &c, h));
  cr_assert(waitpid(pid, &status, 0) == pid);
  EXPECT_EQ(WIFEXITED(status) != 0, 1);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  /* The parent's loop is untouched by what the child did. */
  atomic_store(&release, 1);
  kill(getpid(), SIGUSR2);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(c.work_ok, 2);
  EXPECT_EQ(c.signals, 1);
  test_finish(loop);
}

Test(fork, eddy_loop_fork_reports_failures) {
  eddy_loop *loop = test_loop();
  eddy__fault_fail_nth(EDDY__SYS_EPOLL_CREATE1, 1, EMFILE);
  eddy__fault_fail_nth(EDDY__SYS_EVENTFD, 1, EMFILE);
  {
    int err = eddy_loop_fork(loop);
    EXPECT_EQ(err, -EMFILE);
  }
  eddy__fault_reset();
  EXPECT_OK(eddy_loop_fork(loop));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  test_finish(loop);
}
