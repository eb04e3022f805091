/* Signals as loop callbacks: delivery, several handles and loops, closing
 * from a callback, restoring the previous disposition, errors. */
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

typedef struct sigctx {
  int count;
  int last;
  int stop;
  eddy_signal *close_me;
} sigctx;

static void on_signal(eddy_signal *h, int signum, void *arg) {
  sigctx *c = arg;
  (void)h;
  c->count++;
  c->last = signum;
  if (c->close_me)
    eddy_signal_close(c->close_me);
}

static void raise_soon(eddy_loop *loop, void *arg) {
  (void)loop;
  kill(getpid(), *(int *)arg);
}

static void stop_at(eddy_timer *t, void *arg) {
  (void)arg;
  eddy_loop_stop(eddy_timer_loop(t));
}

/* Runs the loop until nothing is pending for a short while. */
static void run_a_bit(eddy_loop *loop) {
  eddy_timer *t;
  EXPECT_OK(eddy_timer_new(loop, stop_at, NULL, &t));
  EXPECT_OK(eddy_timer_start(t, 30 * EDDY_NSEC_PER_MSEC, 0));
  EXPECT_GE(eddy_loop_run(loop, EDDY_RUN_UNTIL_STOPPED), 0);
  eddy_timer_close(t);
}

Test(signal, a_signal_arrives_as_a_callback_on_the_loop) {
  eddy_loop *loop = test_loop();
  eddy_signal *h;
  sigctx c = {0};
  int sig = SIGUSR1;
  EXPECT_OK(eddy_signal_start(loop, SIGUSR1, on_signal, &c, &h));
  EXPECT_OK(eddy_loop_call_soon(loop, raise_soon, &sig));
  run_a_bit(loop);
  EXPECT_EQ(c.count, 1);
  EXPECT_EQ(c.last, SIGUSR1);
  test_finish(loop);
}

Test(signal, two_handles_on_one_loop_each_get_one_callback) {
  eddy_loop *loop = test_loop();
  eddy_signal *h1, *h2, *other;
  sigctx a = {0}, b = {0}, o = {0};
  int sig = SIGUSR2;
  EXPECT_OK(eddy_signal_start(loop, SIGUSR2, on_signal, &a, &h1));
  EXPECT_OK(eddy_signal_start(loop, SIGUSR2, on_signal, &b, &h2));
  EXPECT_OK(eddy_signal_start(loop, SIGHUP, on_signal, &o, &other));
  EXPECT_OK(eddy_loop_call_soon(loop, raise_soon, &sig));
  run_a_bit(loop);
  EXPECT_EQ(a.count, 1);
  EXPECT_EQ(b.count, 1);
  EXPECT_EQ(o.count, 0);
  test_finish(loop);
}

Test(signal, a_callback_may_close_its_own_and_another_handle) {
  eddy_loop *loop = test_loop();
  eddy_signal *h1, *h2, *h3;
  sigctx a = {0}, b = {0}, c = {0};
  int sig = SIGUSR1;
  /* Handles are called newest first: h3, then h2 (which closes h1 and
   * itself), and h1 is not called. */
  EXPECT_OK(eddy_signal_start(loop, SIGUSR1, on_signal, &a, &h1));
  EXPECT_OK(eddy_signal_start(loop, SIGUSR1, on_signal, &b, &h2));
  EXPECT_OK(eddy_signal_start(loop, SIGUSR1, on_signal, &c, &h3));
  c.close_me = h1;
  b.close_me = h2;
  EXPECT_OK(eddy_loop_call_soon(loop, raise_soon, &sig));
  run_a_bit(loop);
  EXPECT_EQ(c.count, 1);
  EXPECT_EQ(b.count, 1);
  EXPECT_EQ(a.count, 0);
  c.close_me = NULL;
  EXPECT_OK(eddy_loop_call_soon(loop, raise_soon, &sig));
  run_a_bit(loop);
  EXPECT_EQ(c.count, 2);
  test_finish(loop);
}

static int old_handler_hits;
static void old_handler(int sig) {
  (void)sig;
  old_handler_hits++;
}

Test(signal, closing_the_last_handle_restores_the_previous_disposition) {
  eddy_loop *loop = test_loop();
  eddy_signal *h;
  sigctx c = {0};
  struct sigaction sa, now;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = old_handler;
  sigaction(SIGUSR1, &sa, NULL);
  EXPECT_OK(eddy_signal_start(loop, SIGUSR1, on_signal, &c, &h));
  sigaction(SIGUSR1, NULL, &now);
  cr_assert(now.sa_handler != old_handler);
  eddy_signal_close(h);
  sigaction(SIGUSR1, NULL, &now);
  cr_assert(now.sa_handler == old_handler);
  kill(getpid(), SIGUSR1);
  EXPECT_EQ(old_handler_hits, 1);
  test_finish(loop);
}

Test(signal, signals_that_cannot_be_caught_are_refused) {
  eddy_loop *loop = test_loop();
  eddy_signal *h = NULL;
  sigctx c = {0};
  EXPECT_EQ(eddy_signal_start(loop, SIGKILL, on_signal, &c, &h), -EINVAL);
  EXPECT_EQ(eddy_signal_start(loop, SIGSTOP, on_signal, &c, &h), -EINVAL);
  EXPECT_EQ(eddy_signal_start(loop, 0, on_signal, &c, &h), -EINVAL);
  EXPECT_EQ(eddy_signal_start(loop, 65, on_signal, &c, &h), -EINVAL);
  EXPECT_EQ(eddy_signal_start(loop, SIGINT, NULL, &c, &h), -EINVAL);
  EXPECT_EQ(h, 0);
  test_finish(loop);
}

Test(signal, failures_while_starting_leave_nothing_behind) {
  eddy_loop *loop = test_loop();
  eddy_signal *h = NULL;
  sigctx c = {0};
  struct sigaction now;
  /* The process-wide lock's pipe, then the loop's own: neither failure
   * is sticky. */
  eddy__fault_fail_nth(EDDY__SYS_PIPE2, 1, EMFILE);
  EXPECT_EQ(eddy_signal_start(loop, SIGUSR1, on_signal, &c, &h), -EMFILE);
  eddy__fault_fail_nth(EDDY__SYS_PIPE2, 2, ENFILE);
  EXPECT_EQ(eddy_signal_start(loop, SIGUSR1, on_signal, &c, &h), -ENFILE);
  eddy__fault_fail_nth(EDDY__SYS_MALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy_signal_start(loop, SIGUSR1, on_signal, &c, &h), -ENOMEM);
  eddy__fault_fail_nth(EDDY__SYS_SIGACTION, 1, EINVAL);
  EXPECT_EQ(eddy_signal_start(loop, SIGUSR1, on_signal, &c, &h), -EINVAL);
  sigaction(SIGUSR1, NULL, &now);
  cr_assert(now.sa_handler == SIG_DFL);
  EXPECT_EQ(h, 0);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_OK(eddy_signal_start(loop, SIGUSR1, on_signal, &c, &h));
  test_finish(loop);
}

/* Two loops in two threads watch SIGUSR1: one kill() reaches both. */
typedef struct side {
  eddy_loop *loop;
  sigctx c;
  eddy_signal *h;
  pthread_barrier_t *ready;
} side;

static void stop_on_signal(eddy_signal *h, int signum, void *arg) {
  side *s = arg;
  s->c.count++;
  s->c.last = signum;
  eddy_loop_stop(s->loop);
  (void)h;
}

static void *run_side(void *arg) {
  side *s = arg;
  EXPECT_OK(eddy_loop_new(NULL, &s->loop));
  EXPECT_OK(eddy_signal_start(s->loop, SIGUSR1, stop_on_signal, s, &s->h));
  pthread_barrier_wait(s->ready);
  EXPECT_GE(eddy_loop_run(s->loop, EDDY_RUN_UNTIL_STOPPED), 0);
  eddy_signal_close(s->h);
  EXPECT_EQ(eddy_loop_run(s->loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_OK(eddy_loop_free(s->loop));
  return NULL;
}

Test(signal, every_loop_watching_a_signal_gets_it) {
  pthread_barrier_t ready;
  side a = {.ready = &ready}, b = {.ready = &ready};
  pthread_t ta, tb;
  pthread_barrier_init(&ready, NULL, 3);
  cr_assert(pthread_create(&ta, NULL, run_side, &a) == 0);
  cr_assert(pthread_create(&tb, NULL, run_side, &b) == 0);
  pthread_barrier_wait(&ready);
  kill(getpid(), SIGUSR1);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  EXPECT_EQ(a.c.count, 1);
  EXPECT_EQ(b.c.count, 1);
  EXPECT_EQ(eddy__alloc_live(), 0);
}

Test(signal, a_signal_handle_keeps_the_loop_alive) {
  eddy_loop *loop = test_loop();
  eddy_signal *h;
  sigctx c = {0};
  EXPECT_OK(eddy_signal_start(loop, SIGUSR1, on_signal, &c, &h));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 1);
  eddy_signal_close(h);
  eddy_signal_close(h); /* twice in one turn is harmless */
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 0);
  test_finish(loop);
}
