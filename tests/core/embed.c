/* Driving an eddy loop from another main loop: a plain poll() loop watches
 * eddy_loop_backend_fd(), sleeps at most eddy_loop_next_timeout(), and runs
 * eddy without waiting. */
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

typedef struct state {
  eddy_loop *loop;
  int timer_fired, call_ran, work_done;
} state;

static void on_timer(eddy_timer *t, void *arg) {
  ((state *)arg)->timer_fired++;
  eddy_timer_close(t);
}

static void on_call(eddy_loop *loop, void *arg) {
  (void)loop;
  ((state *)arg)->call_ran++;
}

static void work(void *arg) {
  (void)arg;
  usleep(10000);
}

static void on_done(eddy_loop *loop, int status, void *arg) {
  (void)loop;
  EXPECT_EQ(status, 0);
  ((state *)arg)->work_done++;
}

static void *call_later(void *arg) {
  state *s = arg;
  usleep(30000);
  EXPECT_OK(eddy_loop_call_threadsafe(s->loop, on_call, s));
  return NULL;
}

Test(embed, a_host_poll_loop_drives_eddy_without_spinning) {
  state s = {.loop = test_loop()};
  eddy_timer *t;
  pthread_t th;
  int fd = eddy_loop_backend_fd(s.loop), turns = 0;
  if (strcmp(eddy_loop_backend_name(s.loop), "poll") == 0) {
    EXPECT_EQ(fd, -ENOTSUP); /* poll keeps no descriptor to watch */
    test_finish(s.loop);
    return;
  }
  cr_assert(fd >= 0);
  EXPECT_EQ(eddy_loop_next_timeout(s.loop), -1); /* nothing to do */
  EXPECT_OK(eddy_timer_new(s.loop, on_timer, &s, &t));
  EXPECT_OK(eddy_timer_start(t, 20 * EDDY_NSEC_PER_MSEC, 0));
  EXPECT_OK(eddy_work_submit(s.loop, work, on_done, &s, NULL));
  cr_assert(pthread_create(&th, NULL, call_later, &s) == 0);
  while (!(s.timer_fired && s.call_ran && s.work_done) && turns < 1000) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int64_t ns = eddy_loop_next_timeout(s.loop);
    int ms = ns < 0 ? 1000 : (int)((ns + 999999) / 1000000);
    poll(&p, 1, ms);
    EXPECT_GE(eddy_loop_run(s.loop, EDDY_RUN_NOWAIT), 0);
    turns++;
  }
  pthread_join(th, NULL);
  EXPECT_EQ(s.timer_fired, 1);
  EXPECT_EQ(s.call_ran, 1);
  EXPECT_EQ(s.work_done, 1);
  /* Three events, a few turns each at most: the host never spun. */
  EXPECT_LE(turns, 12);
  /* Idle again: the descriptor is not readable, no timeout pending. */
  {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    EXPECT_EQ(poll(&p, 1, 0), 0);
    EXPECT_EQ(eddy_loop_next_timeout(s.loop), -1);
  }
  test_finish(s.loop);
}
