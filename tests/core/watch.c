/* The public descriptor watcher: readable and writable on a pipe, level
 * triggering, changing and stopping what it wants, closing from its own
 * callback, the loop kept alive only while it wants something, errors. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

typedef struct seen {
  int calls, events;
  int close_in_cb; /* close the watcher from its callback */
  int stop_in_cb;  /* want nothing more */
  int drain_fd;    /* >= 0: read what is there, as a user would */
} seen;

static void on_ready(eddy_watch *w, int events, void *arg) {
  seen *s = arg;
  s->calls++;
  s->events |= events;
  if (s->drain_fd >= 0) {
    char buf[64];
    while (read(s->drain_fd, buf, sizeof buf) > 0) {
    }
  }
  if (s->stop_in_cb)
    EXPECT_OK(eddy_watch_start(w, 0));
  if (s->close_in_cb) {
    eddy_watch_close(w);
    eddy_watch_close(w); /* a second close does nothing */
  }
}

static void nonblocking_pipe(int fds[2]) {
  cr_assert(pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
}

Test(watch, a_readable_pipe_calls_back_once_per_turn_while_unread) {
  eddy_loop *loop = test_loop();
  int fds[2];
  seen s = {.drain_fd = -1};
  eddy_watch *w;
  nonblocking_pipe(fds);
  EXPECT_OK(eddy_watch_new(loop, fds[0], on_ready, &s, &w));
  EXPECT_OK(eddy_watch_start(w, EDDY_READABLE));
  cr_assert(write(fds[1], "x", 1) == 1);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_ONCE), 1);
  EXPECT_EQ(s.calls, 1);
  EXPECT_EQ(s.events, EDDY_READABLE);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_ONCE), 1); /* still unread */
  EXPECT_EQ(s.calls, 2);
  s.drain_fd = fds[0];
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_ONCE), 1);
  EXPECT_EQ(s.calls, 3);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 1); /* drained: quiet */
  EXPECT_EQ(s.calls, 3);
  eddy_watch_close(w);
  close(fds[0]);
  close(fds[1]);
  test_finish(loop);
}

Test(watch, writable_then_switched_to_readable) {
  eddy_loop *loop = test_loop();
  int fds[2];
  seen s = {.drain_fd = -1};
  eddy_watch *w;
  nonblocking_pipe(fds);
  EXPECT_OK(eddy_watch_new(loop, fds[1], on_ready, &s, &w));
  EXPECT_OK(eddy_watch_start(w, EDDY_WRITABLE));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_ONCE), 1);
  EXPECT_EQ(s.events, EDDY_WRITABLE);
  /* A write end never becomes readable: wanting only that, it is quiet. */
  s.calls = s.events = 0;
  EXPECT_OK(eddy_watch_start(w, EDDY_READABLE));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 1);
  EXPECT_EQ(s.calls, 0);
  eddy_watch_close(w);
  close(fds[0]);
  close(fds[1]);
  test_finish(loop);
}

/* The reader gone: the write end reports its error as writable. */
Test(watch, a_hang_up_is_reported_as_the_wanted_event) {
  eddy_loop *loop = test_loop();
  int fds[2];
  seen s = {.drain_fd = -1, .close_in_cb = 1};
  eddy_watch *w;
  char fill[65536] = {0};
  nonblocking_pipe(fds);
  while (write(fds[1], fill, sizeof fill) > 0) { /* full: not writable */
  }
  EXPECT_OK(eddy_watch_new(loop, fds[1], on_ready, &s, &w));
  EXPECT_OK(eddy_watch_start(w, EDDY_WRITABLE));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_NOWAIT), 1);
  EXPECT_EQ(s.calls, 0);
  close(fds[0]);
  signal(SIGPIPE, SIG_IGN); /* the write below must fail, not kill */
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(s.calls, 1);
  EXPECT_EQ(s.events, EDDY_WRITABLE);
  EXPECT_EQ(write(fds[1], "x", 1), -1);
  EXPECT_EQ(errno, EPIPE);
  close(fds[1]);
  test_finish(loop);
}

/* Wanting something keeps the loop running; wanting nothing lets it end. */
Test(watch, only_a_watcher_that_wants_something_keeps_the_loop_alive) {
  eddy_loop *loop = test_loop();
  int fds[2];
  seen s = {.drain_fd = -1, .stop_in_cb = 1};
  eddy_watch *w;
  nonblocking_pipe(fds);
  EXPECT_OK(eddy_watch_new(loop, fds[0], on_ready, &s, &w));
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_OK(eddy_watch_start(w, EDDY_READABLE));
  cr_assert(write(fds[1], "x", 1) == 1);
  EXPECT_EQ(eddy_loop_run(loop, EDDY_RUN_UNTIL_IDLE), 0);
  EXPECT_EQ(s.calls, 1); /* stopped in the callback: the loop ended */
  eddy_watch_close(w);
  EXPECT_EQ(eddy_watch_start(w, EDDY_READABLE), EDDY_ECLOSED);
  close(fds[0]);
  close(fds[1]);
  test_finish(loop);
}

Test(watch, bad_arguments_are_refused) {
  eddy_loop *loop = test_loop();
  int fds[2];
  seen s = {.drain_fd = -1};
  eddy_watch *w;
  nonblocking_pipe(fds);
  EXPECT_EQ(eddy_watch_new(loop, -1, on_ready, &s, &w), -EINVAL);
  EXPECT_EQ(eddy_watch_new(loop, fds[0], NULL, &s, &w), -EINVAL);
  EXPECT_OK(eddy_watch_new(loop, fds[0], on_ready, &s, &w));
  EXPECT_EQ(eddy_watch_start(w, 4), -EINVAL);
  eddy_watch_close(w);
  close(fds[0]);
  close(fds[1]);
  test_finish(loop);
}

/* epoll cannot watch a regular file; the error says so and nothing is
 * left behind. */
Test(watch, a_regular_file_on_epoll_is_refused) {
  eddy_loop *loop = test_loop();
  seen s = {.drain_fd = -1};
  eddy_watch *w;
  FILE *f = tmpfile();
  int e;
  cr_assert(f != NULL);
  EXPECT_OK(eddy_watch_new(loop, fileno(f), on_ready, &s, &w));
  e = eddy_watch_start(w, EDDY_WRITABLE);
  if (strcmp(eddy_loop_backend_name(loop), "epoll") == 0)
    EXPECT_EQ(e, -EPERM);
  else
    EXPECT_OK(e);
  eddy_watch_close(w);
  fclose(f);
  test_finish(loop);
}

Test(watch, close_all_closes_a_watcher) {
  eddy_loop *loop = test_loop();
  int fds[2];
  seen s = {.drain_fd = -1};
  eddy_watch *w;
  nonblocking_pipe(fds);
  EXPECT_OK(eddy_watch_new(loop, fds[0], on_ready, &s, &w));
  EXPECT_OK(eddy_watch_start(w, EDDY_READABLE));
  test_finish(loop); /* close_all, and nothing left allocated */
  close(fds[0]);
  close(fds[1]);
}

Test(watch, allocation_failure_is_reported) {
  eddy_loop *loop = test_loop();
  eddy_watch *w = NULL;
  seen s = {.drain_fd = -1};
  eddy__fault_fail_nth(EDDY__SYS_MALLOC, 1, ENOMEM);
  EXPECT_EQ(eddy_watch_new(loop, 0, on_ready, &s, &w), -ENOMEM);
  eddy__fault_reset();
  cr_assert(w == NULL);
  test_finish(loop);
}
